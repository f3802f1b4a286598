// Package tunneltest issues throwaway certificates for tests of the
// master-to-worker tunnel: an ECDSA cluster CA, a server certificate for
// loopback and node client certificates, written as PEM files.
package tunneltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test cluster CA with a server certificate valid for 127.0.0.1,
// ::1 and localhost.
type PKI struct {
	Dir        string
	CACert     string
	ServerCert string
	ServerKey  string

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	t     testing.TB
}

// NewPKI writes a CA and a server certificate into a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), t: t}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "tunneltest-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.CACert = filepath.Join(p.Dir, "ca.crt")
	writePEM(t, p.CACert, "CERTIFICATE", der)
	p.ServerCert, p.ServerKey = p.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return p
}

// NodeClientCert issues a kubelet-style client certificate
// (CN system:node:<node>, O system:nodes) and returns its files.
func (p *PKI) NodeClientCert(node string) (cert, key string) {
	return p.ClientCert("node-"+node, "system:node:"+node, "system:nodes")
}

// ClientCert issues a client certificate with any subject, stored under
// name in the PKI's directory.
func (p *PKI) ClientCert(name, cn string, orgs ...string) (cert, key string) {
	return p.issue(name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: orgs},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *PKI) issue(name string, tmpl *x509.Certificate) (cert, key string) {
	p.t.Helper()
	k := newKey(p.t)
	tmpl.SerialNumber = serial(p.t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, key = filepath.Join(p.Dir, name+".crt"), filepath.Join(p.Dir, name+".key")
	writePEM(p.t, cert, "CERTIFICATE", der)
	writePEM(p.t, key, "EC PRIVATE KEY", keyDER)
	return cert, key
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
