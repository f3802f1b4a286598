package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/iks-dev/iks/internal/alb/route"
)

func TestSSLPassthroughBySNI(t *testing.T) {
	pod := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod saw TLS for %s", r.TLS.ServerName)
	}))
	t.Cleanup(pod.Close)
	web := pods(t, "web", 1)
	c, k := selfSigned(t, "t.example.com")
	secrets := map[string]*corev1.Secret{"ns/tls": {Data: map[string][]byte{corev1.TLSCertKey: c, corev1.TLSPrivateKeyKey: k}}}
	term := ingress("term", 1, nil, "t.example.com", "/", "web")
	term.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"t.example.com"}, SecretName: "tls"}}
	ings := []*networkingv1.Ingress{ingress("pt", 0, map[string]string{pfx + "ssl-passthrough": "true"}, "pt.example.com", "/", "pod"), term}
	in := input(ings, map[string][]string{"pod": {pod.Listener.Addr().String()}, "web": web}, secrets)

	// Without --enable-ssl-passthrough the annotation gets a Warning.
	if _, probs := route.Build(in); len(probs) != 1 || probs[0].Reason != "SSLPassthroughDisabled" {
		t.Fatalf("problems without the flag: %+v", probs)
	}
	in.SSLPassthrough = true
	h := NewHandler(slog.New(slog.DiscardHandler), 443)
	h.Swap(build(t, in))
	s, err := Listen(h, "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.Passthrough = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	_, tlsAddr := s.Addrs()

	for _, tc := range []struct {
		host, wantCN, wantBody string
	}{
		// The pod's own certificate (httptest's, issued for example.com)
		// and the pod decrypts: the ALB did not terminate TLS.
		{"pt.example.com", "", "pod saw TLS for pt.example.com"},
		{"t.example.com", "t.example.com", "web0"},
	} {
		var peer string
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: tc.host, InsecureSkipVerify: true, //nolint:gosec // test
			VerifyConnection: func(cs tls.ConnectionState) error {
				peer = cs.PeerCertificates[0].Subject.CommonName + "|" + strings.Join(cs.PeerCertificates[0].DNSNames, ",")
				return nil
			}}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+tlsAddr.String()+"/", nil)
		req.Host = tc.host
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != tc.wantBody {
			t.Errorf("%s: body %q, want %q", tc.host, b, tc.wantBody)
		}
		wantPeer := tc.wantCN + "|" + tc.wantCN
		if tc.wantCN == "" {
			wantPeer = pod.Certificate().Subject.CommonName + "|" + strings.Join(pod.Certificate().DNSNames, ",")
		}
		if peer != wantPeer {
			t.Errorf("%s: server certificate %q, want %q", tc.host, peer, wantPeer)
		}
	}
}
