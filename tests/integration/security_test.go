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
		// Certificates too: CIS 1.1.20 asks for 0600 (only iks reads them).
		if strings.HasSuffix(p, ".key") || strings.HasSuffix(p, ".kubeconfig") || strings.HasSuffix(p, ".crt") || strings.HasSuffix(p, ".pub") {
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
	if keys < 20 {
		t.Errorf("found only %d keys/certificates/kubeconfigs under the server dir", keys)
	}
	checkCipherSuites(t, n)
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

// checkCipherSuites: kube-apiserver and kubelet refuse a TLS 1.2 CBC
// suite (CIS 1.2.29, 4.2.12) and accept an ECDHE AEAD one.
func checkCipherSuites(t *testing.T, n *testutil.Node) {
	for _, addr := range []string{n.IP + ":6443", n.IP + ":10250"} {
		for _, c := range []struct {
			suite uint16
			ok    bool
		}{
			{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
			{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			raw, err := n.Net.DialContext(ctx, "tcp", addr)
			if err != nil {
				cancel()
				t.Errorf("dial %s: %v", addr, err)
				continue
			}
			conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, // a handshake probe: no identity, no trust needed
				MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{c.suite}})
			err = conn.HandshakeContext(ctx)
			conn.Close()
			cancel()
			if c.ok && err != nil {
				t.Errorf("%s refused %s: %v", addr, tls.CipherSuiteName(c.suite), err)
			}
			if !c.ok && err == nil {
				t.Errorf("%s accepted the weak suite %s", addr, tls.CipherSuiteName(c.suite))
			}
		}
	}
}
