package integration

import (
	"context"
	"crypto/tls"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// checkSecurity asserts the secure defaults: private keys and kubeconfigs
// readable by root only, anonymous requests refused by the apiserver and
// the kubelet.
func checkSecurity(t *testing.T, n *testutil.Node) {
	keys := 0
	err := filepath.WalkDir(filepath.Join(n.DataDir, "server"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".key") || strings.HasSuffix(p, ".kubeconfig") {
			keys++
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", p, st.Mode().Perm())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys < 10 {
		t.Errorf("found only %d keys/kubeconfigs under the server dir", keys)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:     n.Net.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // anonymous probe: no identity, no trust needed
	}}
	for _, url := range []string{"https://" + n.IP + ":6443/api/v1/namespaces", "https://" + n.IP + ":10250/pods"} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %s, want 401 Unauthorized", url, resp.Status)
		}
	}
}
