package secretsenc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/kubernetes"
)

// ReloadTimeout bounds how long Rotate waits for the apiserver to load a
// config it wrote (the apiserver checks the file every ReloadPoll).
const ReloadTimeout = 2 * time.Minute

// ReloadPoll is how often iks's apiserver re-reads the config file.
const ReloadPoll = 2 * time.Second

// Rotator re-keys the Secrets of a running server.
type Rotator struct {
	Path string               // the config file
	API  kubernetes.Interface // admin client of the local apiserver
	Etcd clientv3.KV          // the local etcd, to verify
	Log  *slog.Logger
	Now  func() time.Time
}

// Rotate adds a new key (decrypt-only first, so an apiserver that loads it
// late still reads what others write), makes it the encrypting key,
// rewrites every Secret, checks in etcd that all use it, then drops the
// old keys. It returns the new key's name.
func (r *Rotator) Rotate(ctx context.Context) (string, error) {
	c, err := Load(r.Path)
	if err != nil {
		return "", err
	}
	nk, err := NewKey(r.Now())
	if err != nil {
		return "", err
	}
	old := c.Keys
	steps := []struct {
		what string
		keys []apiserverv1.Key
	}{
		{"add the new key " + nk.Name + " for decryption", append(append([]apiserverv1.Key{}, old...), nk)},
		{"encrypt with the new key", append([]apiserverv1.Key{nk}, old...)},
	}
	for _, s := range steps {
		if err := r.apply(ctx, s.what, &Config{Keys: s.keys}); err != nil {
			return "", err
		}
	}
	n, err := r.rewriteAll(ctx)
	if err != nil {
		return "", fmt.Errorf("re-encrypt Secrets: %w; the old keys stay configured, run rotate-keys again", err)
	}
	r.Log.Info("re-encrypted Secrets", "count", n, "key", nk.Name)
	st, err := ReadStatus(ctx, r.Etcd, &Config{Keys: []apiserverv1.Key{nk}})
	if err != nil {
		return "", err
	}
	if !st.Current() {
		return "", fmt.Errorf("after rewriting, %d of %d Secrets in etcd are still not encrypted with %s: "+
			"the old keys stay configured; run rotate-keys again", st.Total()-st.ByKey[nk.Name], st.Total(), nk.Name)
	}
	if err := r.apply(ctx, "drop the old keys", &Config{Keys: []apiserverv1.Key{nk}}); err != nil {
		return "", err
	}
	return nk.Name, nil
}

// apply writes c and waits until the apiserver serves with it.
func (r *Rotator) apply(ctx context.Context, what string, c *Config) error {
	if err := c.Write(r.Path); err != nil {
		return err
	}
	data, err := os.ReadFile(r.Path)
	if err != nil {
		return err
	}
	want := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	r.Log.Info("encryption config written, waiting for the apiserver to load it", "step", what)
	ctx, cancel := context.WithTimeout(ctx, ReloadTimeout)
	defer cancel()
	for {
		loaded, err := r.loadedHashes(ctx)
		if err == nil && loaded[want] {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: the apiserver did not load %s within %s (last error: %v); "+
				"check the server log for encryption config errors; the Secrets are unchanged and readable", what, r.Path, ReloadTimeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// loadedHashes reads the hashes of the encryption configs the apiserver
// has loaded from its metrics.
func (r *Rotator) loadedHashes(ctx context.Context) (map[string]bool, error) {
	body, err := r.API.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_encryption_config_controller_last_config_info{") {
			continue
		}
		if m := hashLabel.FindStringSubmatch(line); m != nil {
			out[m[1]] = true
		}
	}
	return out, sc.Err()
}

// hashLabel is the config hash label (not apiserver_id_hash).
var hashLabel = regexp.MustCompile(`[{,]hash="([^"]+)"`)

// rewriteAll updates every Secret unchanged: the apiserver re-encrypts a
// Secret read with a key that is not the first one.
func (r *Rotator) rewriteAll(ctx context.Context) (int, error) {
	n := 0
	cont := ""
	for {
		list, err := r.API.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 250, Continue: cont})
		if err != nil {
			return n, err
		}
		for i := range list.Items {
			s := &list.Items[i]
			_, err := r.API.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				// Changed or deleted meanwhile: a change was written with
				// the new key already.
				err = nil
			}
			if err != nil {
				return n, fmt.Errorf("rewrite Secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			n++
		}
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}
