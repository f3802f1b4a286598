package pki

import (
	"bytes"
	"crypto/x509"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// testOptions returns Options for a fresh PKI in a temporary directory.
func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{
		Dir:       filepath.Join(t.TempDir(), "server", "tls"),
		NodeName:  "node-1",
		NodeIPs:   []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")},
		ServiceIP: net.ParseIP("172.21.0.1"),
		ExtraSANs: []string{"api.example.com", "192.0.2.10"},
		Logger:    slog.New(slog.DiscardHandler),
	}
}

func mustEnsure(t *testing.T, opts Options) *PKI {
	t.Helper()
	p, err := Ensure(opts)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return p
}

// fileState is what a snapshot records per file.
type fileState struct {
	data []byte
	mode fs.FileMode
}

// snapshot records every file and directory below dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		st := fileState{mode: info.Mode()}
		if !d.IsDir() {
			if st.data, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		out[rel] = st
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// changedFiles lists the paths whose content or mode differ, or that exist
// in only one of the snapshots.
func changedFiles(before, after map[string]fileState) []string {
	var changed []string
	for p, a := range after {
		b, ok := before[p]
		if !ok || !bytes.Equal(a.data, b.data) || a.mode != b.mode {
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			changed = append(changed, p)
		}
	}
	slices.Sort(changed)
	return changed
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

// verifyLeaf checks that the leaf at certPath chains to the CA at caPath
// for usage, that its key matches, and (for serving certs) that it is valid
// for host.
func verifyLeaf(t *testing.T, certPath, keyPath, caPath string, usage x509.ExtKeyUsage, host string) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, caPath))
	cert := readCert(t, certPath)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now(),
	}); err != nil {
		t.Errorf("%s does not verify against %s for usage %v host %q: %v", certPath, caPath, usage, host, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatalf("%s: %v", keyPath, err)
	}
	if !keyMatches(key, cert.PublicKey) {
		t.Errorf("%s does not match %s", keyPath, certPath)
	}
	return cert
}
