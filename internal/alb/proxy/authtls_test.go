package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// issue makes a certificate for cn signed by parent (self-signed when
// parent is nil) and returns it as a tls.Certificate and PEM.
func issue(t *testing.T, cn string, isCA bool, parent *tls.Certificate) (tls.Certificate, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestAuthTLS(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "verify=%s dn=%s", r.Header.Get("Ssl-Client-Verify"), r.Header.Get("Ssl-Client-Subject-Dn"))
	}))
	t.Cleanup(app.Close)
	ca, caPEM := issue(t, "test-ca", true, nil)
	good, _ := issue(t, "alice", false, &ca)
	rogue, _ := issue(t, "mallory", false, nil)
	srvCert, srvKey := selfSigned(t, "m.example.com")
	secrets := map[string]*corev1.Secret{"ns/ca": {Data: map[string][]byte{"ca.crt": caPEM}},
		"ns/tls": {Data: map[string][]byte{corev1.TLSCertKey: srvCert, corev1.TLSPrivateKeyKey: srvKey}}}
	withTLS := func(i *networkingv1.Ingress) *networkingv1.Ingress {
		i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{i.Spec.Rules[0].Host}, SecretName: "tls"}}
		return i
	}
	ings := []*networkingv1.Ingress{
		withTLS(ingress("mtls", 0, map[string]string{pfx + "auth-tls-secret": "ns/ca"}, "m.example.com", "/", "app")),
		withTLS(ingress("opt", 1, map[string]string{pfx + "auth-tls-secret": "ns/ca", pfx + "auth-tls-verify-client": "optional"}, "o.example.com", "/", "app")),
		withTLS(ingress("open", 2, nil, "p.example.com", "/", "app")),
	}
	_, _, tlsAddr := newServer(t, build(t, input(ings, map[string][]string{"app": {app.Listener.Addr().String()}}, secrets)))
	client := func(cert *tls.Certificate, asked *bool) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, //nolint:gosec // test
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				*asked = true
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			}}}}
	}
	for _, tc := range []struct {
		name, host string
		cert       *tls.Certificate
		code       int
		body       string
		asked      bool
	}{
		{"required, none", "m.example.com", nil, 400, "no required SSL certificate", true},
		{"required, signed by the CA", "m.example.com", &good, 200, "verify=SUCCESS dn=CN=alice", true},
		{"required, another CA", "m.example.com", &rogue, 400, "SSL certificate error", true},
		{"optional, none", "o.example.com", nil, 200, "verify=NONE dn=", true},
		{"optional, another CA", "o.example.com", &rogue, 400, "SSL certificate error", true},
		{"no auth-tls: no certificate asked", "p.example.com", &good, 200, "verify= dn=", false},
	} {
		asked := false
		req, _ := http.NewRequest(http.MethodGet, "https://"+tlsAddr+"/", nil)
		req.Host = tc.host
		c := client(tc.cert, &asked)
		c.Transport.(*http.Transport).TLSClientConfig.ServerName = tc.host
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(b.String(), tc.body) || asked != tc.asked {
			t.Errorf("%s: %d %q (certificate asked: %v), want %d %q (asked: %v)", tc.name, resp.StatusCode, b.String(), asked, tc.code, tc.body, tc.asked)
		}
	}
}
