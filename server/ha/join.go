package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iks-dev/iks/agent/bootstrap"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/fsutil"
	token "github.com/iks-dev/iks/internal/jointoken"
)

// joinTimeout bounds how long a joining server waits for the first one.
const joinTimeout = 5 * time.Minute

// Join fetches the shared files from the server at serverURL when the
// data dir does not hold them yet. It checks the CA against the token's
// hash before sending the token and the cluster's settings against cfg
// before writing anything.
func Join(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	return JoinVerified(ctx, cfg, log, nil)
}

// JoinCheck is what a joiner may check its datastore against: the
// bootstrap Secret as the joined cluster serves it, and the cluster's
// Secrets encryption config (to read that Secret raw).
type JoinCheck struct {
	UID              string
	ResourceVersion  string
	EncryptionConfig []byte
}

// JoinVerified is Join calling verify before anything is written: a
// server on an external datastore checks that its datastore holds the
// very bootstrap Secret the cluster serves.
func JoinVerified(ctx context.Context, cfg *config.Server, log *slog.Logger, verify func(context.Context, JoinCheck) error) error {
	caPath := filepath.Join(cfg.DataDir, "server", "tls", "ca.crt")
	if _, err := os.Stat(caPath); err == nil {
		return nil // joined before
	}
	tok, err := token.Parse(cfg.Token)
	if err != nil {
		return fmt.Errorf("--token: %w; a joining server needs the full server token (K10...::...) from <data-dir>/server/token of a server", err)
	}
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	var caPEM []byte
	for attempt := 1; ; attempt++ {
		caPEM, err = bootstrap.Verify(ctx, cfg.HA.JoinURL, tok)
		if err == nil {
			break
		}
		if errors.Is(err, bootstrap.ErrCAMismatch) || errors.Is(err, bootstrap.ErrUntrustedServer) || ctx.Err() != nil {
			return fmt.Errorf("join %s: %w", cfg.HA.JoinURL, err)
		}
		log.Info("waiting for the server to join", "server", cfg.HA.JoinURL, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w (last: %v)", cfg.HA.JoinURL, ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: cfg.HA.JoinURL, BearerToken: tok.Bootstrap(),
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, Timeout: 15 * time.Second})
	if err != nil {
		return err
	}
	s, err := cs.CoreV1().Secrets(SecretNamespace).Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("fetch the server bootstrap bundle from %s: %w (start the first server with --cluster-init)", cfg.HA.JoinURL, err)
	}
	b, err := Open(s.Data[secretKey], tok)
	if err != nil {
		return err
	}
	if string(b["server/tls/ca.crt"]) != string(caPEM) {
		return fmt.Errorf("the bundle's CA is not the CA %s presents: refusing it", cfg.HA.JoinURL)
	}
	if err := sameCluster(b, cfg); err != nil {
		return err
	}
	if verify != nil {
		if err := verify(ctx, JoinCheck{UID: string(s.UID), ResourceVersion: s.ResourceVersion,
			EncryptionConfig: b["server/cred/encryption-config.json"]}); err != nil {
			return err
		}
	}
	for _, f := range SharedFiles {
		p := filepath.Join(cfg.DataDir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		mode := fs.FileMode(0o600)
		if strings.HasSuffix(f, ".crt") || strings.HasSuffix(f, ".pub") {
			mode = 0o644
		}
		// The CA certificate last: its presence marks a complete join.
		if f == "server/tls/ca.crt" {
			continue
		}
		data := b[f]
		if f == "server/cluster.json" {
			if data, err = ownDatastore(data, cfg); err != nil {
				return err
			}
		}
		if err := fsutil.WriteFileAtomic(p, data, mode); err != nil {
			return err
		}
	}
	if err := fsutil.WriteFileAtomic(caPath, b["server/tls/ca.crt"], 0o644); err != nil {
		return err
	}
	log.Info("joined the cluster's servers: shared CAs and keys written", "server", cfg.HA.JoinURL)
	return nil
}

// sameCluster refuses a server whose flags differ from the cluster's.
func sameCluster(b Bundle, cfg *config.Server) error {
	var ci config.ClusterInfo
	if err := json.Unmarshal(b["server/cluster.json"], &ci); err != nil {
		return fmt.Errorf("the bundle's cluster.json: %w", err)
	}
	var errs []error
	check := func(flag, cluster, here string) {
		if cluster != here {
			errs = append(errs, fmt.Errorf("the cluster at %s runs with %s %s, this server with %s: pass %s %s",
				cfg.HA.JoinURL, flag, cluster, here, flag, cluster))
		}
	}
	check("--cluster-cidr", ci.ClusterCIDR, cfg.ClusterCIDR.String())
	check("--service-cidr", ci.ServiceCIDR, cfg.ServiceCIDR.String())
	check("--cluster-domain", ci.ClusterDomain, cfg.ClusterDomain)
	if ci.IPAMBlockSize != 0 {
		check("--ipam-block-size", fmt.Sprint(ci.IPAMBlockSize), fmt.Sprint(cfg.IPAMBlockSize))
	}
	// A server on an external datastore may join a cluster on embedded
	// etcd (that etcd is then its datastore), not the other way round.
	if ci.Datastore.External() && cfg.Datastore.External == nil {
		errs = append(errs, fmt.Errorf("the cluster at %s keeps its state in the external datastore %s: pass --datastore-endpoint %s "+
			"with --datastore-cafile/--datastore-certfile/--datastore-keyfile for it", cfg.HA.JoinURL,
			strings.Join(ci.Datastore.Endpoints, ","), strings.Join(ci.Datastore.Endpoints, ",")))
	}
	return errors.Join(errs...)
}

// ownDatastore rewrites the cluster's cluster.json with this server's
// datastore: the record says where this data dir's state lives.
func ownDatastore(data []byte, cfg *config.Server) ([]byte, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("the bundle's cluster.json: %w", err)
	}
	raw["datastore"] = cfg.Datastore.Info()
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// EtcdEndpoints are the etcd client URLs of the server at serverURL.
func EtcdEndpoints(serverURL string) []string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil
	}
	return []string{"https://" + net.JoinHostPort(u.Hostname(), "2379")}
}
