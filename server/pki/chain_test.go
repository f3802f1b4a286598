package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"os"
	"testing"
)

// chainDER returns the DER certificates of a PEM file, in order.
func chainDER(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		out = append(out, b.Bytes)
	}
	return out
}

// The chain holds the apiserver certificate then the cluster CA, follows a
// re-issued apiserver certificate, and makes a TLS handshake present the
// CA whose hash join tokens pin.
func TestAPIServerChain(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)

	check := func() {
		t.Helper()
		chain := chainDER(t, p.APIServerChainCert)
		if len(chain) != 2 {
			t.Fatalf("%s holds %d certificates, want 2 (apiserver, CA)", p.APIServerChainCert, len(chain))
		}
		if !bytes.Equal(chain[0], readCert(t, p.APIServerCert).Raw) {
			t.Error("first certificate of the chain is not apiserver.crt")
		}
		if !bytes.Equal(chain[1], readCert(t, p.CACert).Raw) {
			t.Error("second certificate of the chain is not ca.crt")
		}
	}
	check()

	// A new SAN re-issues apiserver.crt; the chain follows.
	opts.ExtraSANs = append(opts.ExtraSANs, "chain.example.com")
	p = mustEnsure(t, opts)
	check()

	// A handshake with the chain presents the CA; its hash is CAHash.
	pair, err := tls.LoadX509KeyPair(p.APIServerChainCert, p.APIServerKey)
	if err != nil {
		t.Fatalf("chain and apiserver key are not a usable pair: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		_ = c.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // inspecting the chain only
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	found := false
	for _, c := range conn.ConnectionState().PeerCertificates {
		sum := sha256.Sum256(c.Raw)
		found = found || hex.EncodeToString(sum[:]) == p.CAHash()
	}
	if !found {
		t.Errorf("TLS handshake does not present the CA with hash %s", p.CAHash())
	}
	if _, _, err := p.IssueClientCert(apiserverChainName, "x", nil); err == nil {
		t.Errorf("IssueClientCert(%q) succeeded; it would clobber the chain", apiserverChainName)
	}
}
