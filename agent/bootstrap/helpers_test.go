package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	token "github.com/iks-dev/iks/internal/jointoken"
)

// testCA is a CA and a serving certificate for 127.0.0.1 it signed.
type testCA struct {
	cert    *x509.Certificate
	certPEM []byte
	serving tls.Certificate // leaf followed by the CA
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{
		cert:    ca,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		serving: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key},
	}
}

func (c *testCA) token(t *testing.T) token.Token {
	t.Helper()
	tok, err := token.Generate(certHash(c.cert))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fakeAPI answers GET /api like kube-apiserver: 200 with APIVersions for
// the accepted bearer token, 401 otherwise. It counts requests, so tests
// can prove that no secret was sent.
type fakeAPI struct {
	accept   string
	requests atomic.Int32
	// status, when set, overrides the answer (e.g. 503).
	status func(n int32) int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	if f.status != nil {
		if code := f.status(n); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	if r.URL.Path != "/api" || r.Header.Get("Authorization") != "Bearer "+f.accept {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"kind":"Status","code":401}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"kind":"APIVersions","versions":["v1"]}`)
}

// serve starts an HTTPS server with certs on ln (a new loopback listener
// when nil).
func serve(t *testing.T, h http.Handler, certs []tls.Certificate, ln net.Listener) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.TLS = &tls.Config{Certificates: certs}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
