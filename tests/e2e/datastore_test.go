package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestExternalDatastore runs a server on an external etcd
// (--datastore-endpoint). The external etcd is a real one: the embedded
// etcd of another server, A (--cluster-init, so it serves on its node
// IP), reached with copies of A's etcd client certificate. Server B
// joins A's cluster with --server and the token but runs no etcd of its
// own: the etcd membership stays A's member alone, B has no etcd data,
// nothing listens on its 2379, and both apiservers serve the same
// objects. Bad datastore settings are refused before anything is
// written, naming the endpoint and the fix; the etcd commands behave as
// the README documents for external datastores.
func TestExternalDatastore(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "ds", 81)
	a := testutil.NewNodeOn(t, "ds1", nw, "a", 10)
	a.Start("--disable-agent", "--cluster-init")
	token := waitTokenFile(t, a, 3*time.Minute)
	testutil.WaitControlPlaneReady(t, a, 4*time.Minute)
	url := "https://" + a.IP + ":6443"
	etcdURL := "https://" + a.IP + ":2379"

	ca, cert, key := etcdClientFiles(t, a)
	dsFlags := []string{"--datastore-endpoint", etcdURL, "--datastore-cafile", ca, "--datastore-certfile", cert, "--datastore-keyfile", key}

	t.Run("bad datastores are refused before anything is written", func(t *testing.T) {
		bad := testutil.NewNodeOn(t, "ds9", nw, "b", 19)
		for _, c := range []struct {
			name string
			args []string
			want []string
		}{
			{"no etcd listens", []string{"--datastore-endpoint", "https://" + a.IP + ":2399", "--datastore-cafile", ca, "--datastore-certfile", cert, "--datastore-keyfile", key},
				[]string{"https://" + a.IP + ":2399 does not answer", "nothing listens there"}},
			{"no client certificate", []string{"--datastore-endpoint", etcdURL, "--datastore-cafile", ca},
				[]string{etcdURL + " does not answer", "etcd refuses this client", "--datastore-certfile"}},
			{"untrusted etcd", []string{"--datastore-endpoint", etcdURL, "--datastore-certfile", cert, "--datastore-keyfile", key},
				[]string{etcdURL + " does not answer", "not signed by --datastore-cafile"}},
			{"a new first server on a datastore holding a cluster", dsFlags,
				[]string{"already holds a Kubernetes cluster", "--server https://SERVER:6443 --token TOKEN"}},
		} {
			cmd := bad.Command(bad.Args(append([]string{"--disable-agent"}, c.args...)...)...)
			out, err := runFor(cmd, 2*time.Minute)
			t.Logf("%s: %s", c.name, lastLine(string(out)))
			for _, w := range c.want {
				if err == nil || !strings.Contains(string(out), w) {
					t.Errorf("%s: %v, want %q in:\n%s", c.name, err, w, tail(string(out), 3000))
				}
			}
			if _, err := os.Stat(filepath.Join(bad.DataDir, "server")); !os.IsNotExist(err) {
				t.Errorf("%s: the refused server wrote %s: %v", c.name, filepath.Join(bad.DataDir, "server"), err)
			}
		}
	})

	t.Run("foreign etcd", func(t *testing.T) {
		// C is a cluster of its own, with the same kind of iks data in
		// its etcd (its bootstrap Secret included).
		c := testutil.NewNodeOn(t, "ds3", nw, "b", 12)
		c.Start("--disable-agent", "--cluster-init")
		testutil.WaitControlPlaneReady(t, c, 4*time.Minute)
		cca, ccert, ckey := etcdClientFiles(t, c)
		bad := testutil.NewNodeOn(t, "ds8", nw, "b", 18)
		out, err := runFor(bad.Command(bad.Args("--disable-agent", "--server", url, "--token", token, "--datastore-endpoint", "https://"+c.IP+":2379",
			"--datastore-cafile", cca, "--datastore-certfile", ccert, "--datastore-keyfile", ckey)...), 2*time.Minute)
		t.Logf("%s", lastLine(string(out)))
		if err == nil || !strings.Contains(string(out), "https://"+c.IP+":2379 is not the datastore of the cluster at "+url) {
			t.Errorf("joiner on another cluster's etcd: %v\n%s", err, tail(string(out), 3000))
		}
		if _, err := os.Stat(filepath.Join(bad.DataDir, "server")); !os.IsNotExist(err) {
			t.Errorf("the refused joiner wrote %s: %v", filepath.Join(bad.DataDir, "server"), err)
		}
		if _, err := c.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})

	b := testutil.NewNodeOn(t, "ds2", nw, "b", 11)
	bArgs := append([]string{"--disable-agent", "--server", url, "--token", token}, dsFlags...)
	b.Start(bArgs...)
	testutil.WaitControlPlaneReady(t, b, 4*time.Minute)

	t.Run("B runs no etcd of its own", func(t *testing.T) {
		ec := testutil.EtcdClient(t, nw, a, []*testutil.Node{a})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		list, err := ec.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Members) != 1 || list.Members[0].Name != a.Name {
			t.Errorf("etcd members %v, want %s's alone", list.Members, a.Name)
		}
		if _, err := os.Stat(filepath.Join(b.DataDir, "server", "db", "etcd")); !os.IsNotExist(err) {
			t.Errorf("B has an etcd data dir: %v", err)
		}
		if conn, err := nw.Router.DialContext(ctx, "tcp", b.IP+":2379"); err == nil {
			conn.Close()
			t.Errorf("something listens on %s:2379", b.IP)
		}
		var ci struct {
			Datastore struct {
				Kind      string   `json:"kind"`
				Endpoints []string `json:"endpoints"`
			} `json:"datastore"`
		}
		data, _ := os.ReadFile(filepath.Join(b.DataDir, "server", "cluster.json"))
		if err := json.Unmarshal(data, &ci); err != nil || ci.Datastore.Kind != "external" || strings.Join(ci.Datastore.Endpoints, ",") != etcdURL {
			t.Errorf("B's cluster.json does not record the external datastore %s: %v %s", etcdURL, err, data)
		}
		if !strings.Contains(b.Log(), "scheduled etcd snapshots are off with an external datastore") {
			t.Error("B's log does not say scheduled snapshots are off")
		}
	})

	ca1 := testutil.ServerClient(t, nw, a, a.IP, 10*time.Second)
	cb := testutil.ServerClient(t, nw, a, b.IP, 10*time.Second)
	t.Run("both apiservers serve the same objects", func(t *testing.T) {
		ctx := context.Background()
		if _, err := ca1.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-a"},
			Data: map[string]string{"k": "a"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, err := cb.CoreV1().ConfigMaps("default").Get(ctx, "from-a", metav1.GetOptions{}); err != nil || got.Data["k"] != "a" {
			t.Errorf("B reading A's write: %v %v", got, err)
		}
		if _, err := cb.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "from-b"},
			StringData: map[string]string{"k": "b"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, err := ca1.CoreV1().Secrets("default").Get(ctx, "from-b", metav1.GetOptions{}); err != nil || string(got.Data["k"]) != "b" {
			t.Errorf("A reading (decrypting) B's Secret: %v %v", got, err)
		}
	})

	t.Run("etcd commands on B use or refuse the external datastore", func(t *testing.T) {
		out, err := b.Command("secrets-encrypt", "status").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "every Secret is encrypted with the active key") || strings.Contains(string(out), "Secrets: 0\n") {
			t.Errorf("secrets-encrypt status on B: %v\n%s", err, out)
		}
		out, err = b.Command("etcd-snapshot", "save", "--name", "ext").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "snapshot of the whole external datastore "+etcdURL) {
			t.Fatalf("etcd-snapshot save on B: %v\n%s", err, out)
		}
		snaps, _ := filepath.Glob(filepath.Join(b.DataDir, "server", "db", "snapshots", "ext-*"))
		var snap string
		for _, s := range snaps {
			if st, err := os.Stat(s); err == nil && st.Size() > 0 && !strings.HasSuffix(s, ".json") {
				snap = s
			}
		}
		if snap == "" {
			t.Fatalf("no snapshot file in B's data dir: %v", snaps)
		}
		out, err = b.Command("etcd-snapshot", "restore", filepath.Base(snap)).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "external datastore "+etcdURL) || !strings.Contains(string(out), "etcdutl snapshot restore") {
			t.Errorf("etcd-snapshot restore on B: %v\n%s", err, out)
		}
		out, err = b.Command("server", "remove", "iks-ds9").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "no etcd member to remove") {
			t.Errorf("server remove on B: %v\n%s", err, out)
		}
		ec := testutil.EtcdClient(t, nw, a, []*testutil.Node{a})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if list, err := ec.MemberList(ctx); err != nil || len(list.Members) != 1 {
			t.Errorf("etcd members after server remove on B: %v %v", list, err)
		}
	})

	t.Run("B's data dir refuses the embedded etcd, restarts on the external one", func(t *testing.T) {
		if _, err := b.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		out, err := runFor(b.Command(b.Args("--disable-agent", "--server", url, "--token", token)...), 2*time.Minute)
		if err == nil || !strings.Contains(string(out), "keeps its cluster state in the external datastore "+etcdURL) ||
			!strings.Contains(string(out), "pass --datastore-endpoint "+etcdURL) {
			t.Errorf("restart without --datastore-endpoint: %v\n%s", err, tail(string(out), 3000))
		}
		b.Start(bArgs...)
		testutil.WaitControlPlaneReady(t, b, 4*time.Minute)
		if _, err := cb.CoreV1().ConfigMaps("default").Get(context.Background(), "from-a", metav1.GetOptions{}); err != nil {
			t.Errorf("B after its restart: %v", err)
		}
	})
}

// etcdClientFiles copies a server's etcd CA and the apiserver's etcd
// client identity, as a user's files for an external etcd.
func etcdClientFiles(t *testing.T, n *testutil.Node) (ca, cert, key string) {
	t.Helper()
	files := t.TempDir()
	for _, f := range []string{"etcd/ca.crt", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"} {
		data, err := os.ReadFile(filepath.Join(n.DataDir, "server", "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(files, filepath.Base(f)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(files, "ca.crt"), filepath.Join(files, "apiserver-etcd-client.crt"), filepath.Join(files, "apiserver-etcd-client.key")
}

// runFor runs cmd and returns its output; it is killed after timeout.
func runFor(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return buf.Bytes(), fmt.Errorf("still running after %s: killed", timeout)
	}
}

// tail returns the end of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
