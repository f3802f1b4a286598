package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestDayTwoOperations checks, on one server, Secrets encryption at rest
// and key rotation, certificate renewal and rotation, and etcd snapshots
// with --cluster-reset-restore-path (refusing corrupt and foreign files).
func TestDayTwoOperations(t *testing.T) {
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "d2ops", "10.88.15.1")
	// Short-lived leaves: the next start must renew them.
	n.Env = []string{"IKS_CERT_VALIDITY_DAYS=30"}
	n.Start("--disable-agent")
	waitControlPlane(t, n)
	cs := n.Client()
	ctx := context.Background()
	iks := func(args ...string) (string, error) {
		out, err := n.Command(args...).CombinedOutput()
		return string(out), err
	}
	mustIKS := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := iks(args...)
		if err != nil {
			t.Fatalf("iks %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	secretCanary, cmCanary := "secret-canary-"+randHex(t), "configmap-canary-"+randHex(t)
	etcdDir := filepath.Join(n.DataDir, "server", "db", "etcd")

	t.Run("secrets are encrypted in etcd's files", func(t *testing.T) {
		if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "canary"},
			StringData: map[string]string{"v": secretCanary}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "canary"},
			Data: map[string]string{"v": cmCanary}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The write is acknowledged after etcd's WAL is synced: the raw
		// bytes are on disk now. The ConfigMap proves the scan sees them.
		if !dirContains(t, etcdDir, cmCanary) {
			t.Fatalf("control failed: the ConfigMap's plaintext is not found in %s", etcdDir)
		}
		if dirContains(t, etcdDir, secretCanary) {
			t.Errorf("the Secret's plaintext is readable in etcd's files under %s", etcdDir)
		}
		st, err := os.Stat(filepath.Join(n.DataDir, "server", "cred", "encryption-config.json"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("encryption config: %v, mode %v, want 0600", err, st.Mode().Perm())
		}
		out := mustIKS(t, "secrets-encrypt", "status")
		if !strings.Contains(out, "every Secret is encrypted with the active key") {
			t.Errorf("status:\n%s", out)
		}
	})

	var snapPath string
	t.Run("snapshot save and ls", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("snap-%d", i)}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		out := mustIKS(t, "etcd-snapshot", "save")
		m := regexp.MustCompile(`saved (\S+) \((\d+) bytes`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("save output:\n%s", out)
		}
		snapPath = m[1]
		st, err := os.Stat(snapPath)
		if err != nil || fmt.Sprint(st.Size()) != m[2] {
			t.Fatalf("snapshot file %s: %v (size %v, reported %s)", snapPath, err, st, m[2])
		}
		ls := mustIKS(t, "etcd-snapshot", "ls")
		if !strings.Contains(ls, filepath.Base(snapPath)) || !strings.Contains(ls, "on-demand") {
			t.Errorf("ls does not list %s:\n%s", snapPath, ls)
		}
	})
	if snapPath == "" {
		t.FailNow()
	}

	var oldKey string
	t.Run("rotate-keys re-encrypts every Secret", func(t *testing.T) {
		oldKey = activeKey(t, mustIKS(t, "secrets-encrypt", "status"))
		t0 := time.Now()
		mustIKS(t, "secrets-encrypt", "rotate-keys")
		t.Logf("rotate-keys took %s", time.Since(t0).Round(time.Millisecond))
		out := mustIKS(t, "secrets-encrypt", "status")
		newKey := activeKey(t, out)
		if newKey == oldKey || strings.Contains(out, oldKey) || !strings.Contains(out, "every Secret is encrypted with the active key") {
			t.Errorf("after rotation (old key %s):\n%s", oldKey, out)
		}
		s, err := cs.CoreV1().Secrets("default").Get(ctx, "canary", metav1.GetOptions{})
		if err != nil || string(s.Data["v"]) != secretCanary {
			t.Errorf("canary Secret after rotation: %v %q", err, s.Data["v"])
		}
	})

	t.Run("certificates near expiry are renewed, rotate keeps the CA", func(t *testing.T) {
		tls := filepath.Join(n.DataDir, "server", "tls")
		if left := time.Until(notAfter(t, filepath.Join(tls, "apiserver.crt"))); left > 31*24*time.Hour {
			t.Fatalf("apiserver certificate valid %s with IKS_CERT_VALIDITY_DAYS=30", left)
		}
		out := mustIKS(t, "certificate", "check")
		if !strings.Contains(out, "renewed at next server start") || !strings.Contains(out, "ok (CA)") {
			t.Errorf("certificate check:\n%s", out)
		}
		if out, err := iks("certificate", "rotate"); err == nil || !strings.Contains(out, "stop iks server first") {
			t.Errorf("rotate while the server runs: %v\n%s", err, out)
		}
		if out, err := iks("certificate", "rotate-ca"); err == nil || !strings.Contains(out, "not implemented") {
			t.Errorf("rotate-ca: %v\n%s", err, out)
		}
		if _, err := n.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		ca := fileHash(t, filepath.Join(tls, "ca.crt"))
		schedKey := fileHash(t, filepath.Join(tls, "scheduler.key"))
		apiKey := fileHash(t, filepath.Join(tls, "apiserver.key"))
		if out, err := iks("certificate", "rotate", "--service", "no-such"); err == nil || !strings.Contains(out, `unknown service "no-such"`) {
			t.Errorf("rotate of an unknown service: %v\n%s", err, out)
		}
		mustIKS(t, "certificate", "rotate", "--service", "kube-scheduler")
		n.Env = nil
		n.Start("--disable-agent")
		waitControlPlane(t, n)
		for _, c := range []string{"apiserver.crt", "admin.crt", "etcd/server.crt", "scheduler.crt"} {
			if left := time.Until(notAfter(t, filepath.Join(tls, c))); left < 360*24*time.Hour {
				t.Errorf("%s valid only %s after a start within 90 days of its expiry", c, left.Round(time.Hour))
			}
		}
		if fileHash(t, filepath.Join(tls, "scheduler.key")) == schedKey {
			t.Error("rotate --service kube-scheduler kept the scheduler's key")
		}
		if fileHash(t, filepath.Join(tls, "apiserver.key")) != apiKey {
			t.Error("renewal or a scheduler-only rotation replaced the apiserver's key")
		}
		if fileHash(t, filepath.Join(tls, "ca.crt")) != ca {
			t.Error("the cluster CA changed")
		}
		cs = n.Client()
	})

	t.Run("cluster-reset restores a snapshot, refusing bad ones", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, fmt.Sprintf("snap-%d", i), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "after-snapshot"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if out, err := iks(n.Args("--cluster-reset", "--cluster-reset-restore-path", snapPath)...); err == nil {
			t.Errorf("cluster-reset while the server runs was accepted:\n%s", out)
		}
		if _, err := n.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		before := listDir(t, filepath.Dir(etcdDir))
		bad := t.TempDir()
		corrupt := copySnapshot(t, snapPath, filepath.Join(bad, "corrupt"), func(data []byte, m map[string]any) {
			data[len(data)/2] ^= 0xff
		})
		foreign := copySnapshot(t, snapPath, filepath.Join(bad, "foreign"), func(data []byte, m map[string]any) {
			m["clusterCAHash"] = strings.Repeat("ab", 32)
		})
		for _, c := range []struct{ path, want string }{{corrupt, "is corrupt"}, {foreign, "belongs to another cluster"}} {
			out, err := iks(n.Args("--cluster-reset", "--cluster-reset-restore-path", c.path)...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("restore of %s: %v, want %q in:\n%s", c.path, err, c.want, out)
			}
			if after := listDir(t, filepath.Dir(etcdDir)); after != before {
				t.Errorf("a refused restore changed %s:\nbefore %s\nafter  %s", filepath.Dir(etcdDir), before, after)
			}
		}
		t0 := time.Now()
		out, err := iks(n.Args("--cluster-reset", "--cluster-reset-restore-path", snapPath)...)
		if err != nil || !strings.Contains(out, "restart iks server without --cluster-reset") {
			t.Fatalf("cluster-reset: %v\n%s", err, out)
		}
		t.Logf("restore took %s", time.Since(t0).Round(time.Millisecond))
		n.Start("--disable-agent", "--etcd-snapshot-schedule-cron", "* * * * *", "--etcd-snapshot-retention", "1")
		waitControlPlane(t, n)
		cs = n.Client()
		for i := 1; i <= 3; i++ {
			if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, fmt.Sprintf("snap-%d", i), metav1.GetOptions{}); err != nil {
				t.Errorf("snap-%d not restored: %v", i, err)
			}
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "after-snapshot", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after-snapshot exists after restoring an older snapshot: %v", err)
		}
		// The snapshot's Secrets use the key rotate-keys removed since:
		// the restore put it back for decryption.
		s, err := cs.CoreV1().Secrets("default").Get(ctx, "canary", metav1.GetOptions{})
		if err != nil || string(s.Data["v"]) != secretCanary {
			t.Errorf("canary Secret after restore: %v %q", err, s.Data["v"])
		}
		if out := mustIKS(t, "secrets-encrypt", "status"); !strings.Contains(out, oldKey) {
			t.Errorf("status does not show the restored key %s:\n%s", oldKey, out)
		}
	})

	t.Run("scheduled snapshots and delete", func(t *testing.T) {
		deadline := time.Now().Add(90 * time.Second)
		var ls string
		for !strings.Contains(ls, "scheduled") {
			if time.Now().After(deadline) {
				t.Fatalf("no scheduled snapshot within 90s with cron \"* * * * *\":\n%s", ls)
			}
			time.Sleep(time.Second)
			ls = mustIKS(t, "etcd-snapshot", "ls")
		}
		mustIKS(t, "etcd-snapshot", "delete", filepath.Base(snapPath))
		if _, err := os.Stat(snapPath); !os.IsNotExist(err) {
			t.Errorf("deleted snapshot still there: %v", err)
		}
		if _, err := os.Stat(snapPath + ".meta.json"); !os.IsNotExist(err) {
			t.Errorf("deleted snapshot's metadata still there: %v", err)
		}
	})
}

// waitControlPlane waits for the control-plane-only server's ready line.
func waitControlPlane(t *testing.T, n *testutil.Node) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if exited, err := n.Exited(); exited {
			t.Fatalf("%s exited: %v\n%s", n.Name, err, tail(n.Log()))
		}
		log := n.Log()
		if i := strings.LastIndex(log, "===== start"); i >= 0 && strings.Contains(log[i:], "control plane ready in") {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("control plane of %s not ready after 3m:\n%s", n.Name, tail(n.Log()))
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

func randHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// dirContains reports whether any file under dir contains s.
func dirContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found = bytes.Contains(data, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func activeKey(t *testing.T, status string) string {
	t.Helper()
	m := regexp.MustCompile(`Active key: (\S+)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("no active key in:\n%s", status)
	}
	return m[1]
}

func notAfter(t *testing.T, path string) time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}

// copySnapshot copies a snapshot and its metadata to dst, letting edit
// change either.
func copySnapshot(t *testing.T, src, dst string, edit func([]byte, map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	metaData, err := os.ReadFile(src + ".meta.json")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(metaData, &m); err != nil {
		t.Fatal(err)
	}
	edit(data, m)
	metaData, _ = json.Marshal(m)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".meta.json", metaData, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// listDir renders the names, sizes and mtimes of dir's tree.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d:%d ", strings.TrimPrefix(p, dir), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
