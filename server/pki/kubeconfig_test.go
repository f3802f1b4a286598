package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// newFakeAPIServer serves HTTPS on loopback with the apiserver certificate,
// requires a client certificate from the cluster CA and answers with the
// client's common name.
func newFakeAPIServer(t *testing.T, p *PKI) *httptest.Server {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.APIServerCert, p.APIServerKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(p.CACertPEM()) {
		t.Fatal("cannot load CA")
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// whoami calls the fake apiserver with cfg and returns the identity it saw.
func whoami(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("HTTP client from kubeconfig: %v", err)
	}
	resp, err := client.Get(cfg.Host + "/version")
	if err != nil {
		t.Fatalf("TLS request with kubeconfig credentials: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestEmbeddedKubeconfig(t *testing.T) {
	p := mustEnsure(t, testOptions(t))
	srv := newFakeAPIServer(t, p)
	path := filepath.Join(t.TempDir(), "etc", "iks", "iks.yaml")
	if err := WriteEmbeddedKubeconfig(path, srv.URL, p.CACertPEM(), p.AdminCert, p.AdminKey); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", info.Mode().Perm())
	}

	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("clientcmd cannot load %s: %v", path, err)
	}
	if raw.CurrentContext != "iks" || raw.Contexts["iks"] == nil || raw.Contexts["iks"].Cluster != "iks" ||
		raw.Contexts["iks"].AuthInfo != "admin" || raw.AuthInfos["admin"] == nil || raw.Clusters["iks"] == nil {
		t.Fatalf("unexpected kubeconfig structure: %+v", raw)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != srv.URL || len(cfg.TLSClientConfig.CAData) == 0 || len(cfg.TLSClientConfig.CertData) == 0 ||
		len(cfg.TLSClientConfig.KeyData) == 0 || cfg.TLSClientConfig.CertFile != "" {
		t.Fatalf("rest.Config lacks embedded TLS data: %+v", cfg.TLSClientConfig)
	}
	// The file stays valid after the PKI directory is gone.
	if err := os.RemoveAll(p.Dir); err != nil {
		t.Fatal(err)
	}
	if who := whoami(t, cfg); who != "admin" {
		t.Errorf("server saw user %q, want admin", who)
	}
}

func TestFileReferenceKubeconfig(t *testing.T) {
	p := mustEnsure(t, testOptions(t))
	srv := newFakeAPIServer(t, p)
	path := filepath.Join(t.TempDir(), "scheduler.kubeconfig")
	if err := WriteKubeconfig(path, srv.URL, p.CACertPEM(), p.SchedulerCert, p.SchedulerKey); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSClientConfig.CertFile != p.SchedulerCert || cfg.TLSClientConfig.KeyFile != p.SchedulerKey ||
		len(cfg.TLSClientConfig.CAData) == 0 {
		t.Fatalf("rest.Config TLS = %+v", cfg.TLSClientConfig)
	}
	if who := whoami(t, cfg); who != "system:kube-scheduler" {
		t.Errorf("server saw user %q", who)
	}

	// Rewriting with the same input leaves the file identical.
	if err := WriteKubeconfig(path, srv.URL, p.CACertPEM(), p.SchedulerCert, p.SchedulerKey); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); string(second) != string(first) {
		t.Error("kubeconfig changed on an identical rewrite")
	}
}

func TestKubeconfigRejectsBadInput(t *testing.T) {
	p := mustEnsure(t, testOptions(t))
	dir := t.TempDir()
	cases := map[string]error{
		"http URL":        WriteKubeconfig(filepath.Join(dir, "a"), "http://127.0.0.1:6443", p.CACertPEM(), p.AdminCert, p.AdminKey),
		"no CA":           WriteKubeconfig(filepath.Join(dir, "b"), "https://127.0.0.1:6443", nil, p.AdminCert, p.AdminKey),
		"mismatched pair": WriteKubeconfig(filepath.Join(dir, "c"), "https://127.0.0.1:6443", p.CACertPEM(), p.AdminCert, p.SchedulerKey),
		"missing cert":    WriteEmbeddedKubeconfig(filepath.Join(dir, "d"), "https://127.0.0.1:6443", p.CACertPEM(), filepath.Join(dir, "nope.crt"), p.AdminKey),
	}
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: WriteKubeconfig succeeded", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected kubeconfigs left files: %v", entries)
	}
}
