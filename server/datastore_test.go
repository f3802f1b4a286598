package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProbeEtcdNamesTheFix: each way an endpoint fails to be etcd is
// named with the endpoint and its fix, against real listeners.
func TestProbeEtcdNamesTheFix(t *testing.T) {
	etcdLike := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			w.Write([]byte(`{"etcdserver":"3.6.5","etcdcluster":"3.6.0"}`))
			return
		}
		http.NotFound(w, r)
	})
	open := httptest.NewTLSServer(etcdLike)
	defer open.Close()
	pool := x509.NewCertPool()
	pool.AddCert(open.Certificate())
	trusting := &tls.Config{RootCAs: pool}

	mtls := httptest.NewUnstartedServer(etcdLike)
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	mtls.StartTLS()
	defer mtls.Close()
	mpool := x509.NewCertPool()
	mpool.AddCert(mtls.Certificate())

	plain := httptest.NewServer(etcdLike)
	defer plain.Close()
	notEtcd := httptest.NewTLSServer(http.NotFoundHandler())
	defer notEtcd.Close()
	npool := x509.NewCertPool()
	npool.AddCert(notEtcd.Certificate())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()

	ctx := context.Background()
	if v, err := probeEtcd(ctx, open.URL, trusting); err != nil || !strings.Contains(v, "3.6.5") {
		t.Errorf("etcd-like endpoint: %q %v", v, err)
	}
	if v, err := probeEtcd(ctx, plain.URL, nil); err != nil || !strings.Contains(v, "3.6.5") {
		t.Errorf("plain http endpoint without TLS: %q %v", v, err)
	}
	for _, c := range []struct {
		name, url string
		tls       *tls.Config
		want      string
	}{
		{"untrusted server", open.URL, &tls.Config{}, "not signed by --datastore-cafile"},
		{"client certificate required", mtls.URL, &tls.Config{RootCAs: mpool}, "etcd refuses this client"},
		{"nothing listens", closed, trusting, "nothing listens there"},
		{"plain http server", strings.Replace(plain.URL, "http://", "https://", 1), trusting, "use an http:// endpoint"},
		{"not etcd", notEtcd.URL, &tls.Config{RootCAs: npool}, "not as etcd does"},
	} {
		_, err := probeEtcd(ctx, c.url, c.tls)
		if err == nil || !strings.Contains(err.Error(), c.url) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q and the endpoint", c.name, err, c.want)
		}
	}
}
