package watch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iks-dev/iks/internal/alb/route"
)

// tlsSecret is a kubernetes.io/tls Secret with a fresh self-signed
// certificate whose common name is cn.
func tlsSecret(t *testing.T, ns, name, cn string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"a.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}}
}

// servedCN is the common name of the certificate the table serves for name.
func servedCN(t *route.Table, name string) string {
	if t == nil {
		return ""
	}
	c := t.Certificate(name)
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return ""
	}
	return x.Subject.CommonName
}

// TestSecretsOnlyReferenced: the watcher lists and watches only the
// Secrets its table reads (the TLS Secret and the default certificate),
// each by name in its namespace, never all Secrets; a referenced Secret
// that exists is in the first table (no false "missing" build); a renewed
// Secret reaches serving; a Secret no longer referenced is no longer
// watched.
func TestSecretsOnlyReferenced(t *testing.T) {
	ing := ingress("tls", "public-iks-k8s-nginx", "a.example.com", "web")
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}, SecretName: "web-tls"}}
	cs := fake.NewClientset(
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "public-iks-k8s-nginx"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		tlsSecret(t, "default", "web-tls", "first"),
		tlsSecret(t, "kube-system", "default-cert", "default"),
		tlsSecret(t, "other", "unrelated", "unrelated"),
		ing,
	)
	s := &sink{}
	w := New(Config{Class: "public-iks-k8s-nginx", DefaultCertSecret: "kube-system/default-cert"}, cs, s, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Synced()
	if got := servedCN(s.first, "a.example.com"); got != "first" {
		t.Errorf("first table serves %q for a.example.com, want the Secret's certificate \"first\"", got)
	}
	if got := servedCN(s.first, "unknown.example.com"); got != "default" {
		t.Errorf("first table serves %q for an unknown name, want the default certificate", got)
	}
	want := []string{"default/web-tls", "kube-system/default-cert"}
	got := w.secrets.watched()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("watched Secrets %v, want %v", got, want)
	}
	for _, a := range cs.Actions() {
		if a.GetResource().Resource != "secrets" || (a.GetVerb() != "list" && a.GetVerb() != "watch") {
			continue
		}
		var fs string
		switch r := a.(type) {
		case k8stesting.ListActionImpl:
			fs = r.GetListRestrictions().Fields.String()
		case k8stesting.WatchActionImpl:
			fs = r.GetWatchRestrictions().Fields.String()
		}
		key := a.GetNamespace() + "/" + strings.TrimPrefix(fs, "metadata.name=")
		if a.GetNamespace() == "" || !strings.HasPrefix(fs, "metadata.name=") || !slices.Contains(want, key) {
			t.Errorf("%s of secrets in namespace %q with field selector %q: want only named, referenced Secrets", a.GetVerb(), a.GetNamespace(), fs)
		}
	}

	// A renewed certificate is served.
	if _, err := cs.CoreV1().Secrets("default").Update(ctx, tlsSecret(t, "default", "web-tls", "renewed"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "renewed certificate served", func() error {
		if got := servedCN(s.get(), "a.example.com"); got != "renewed" {
			return errorf("serving %q", got)
		}
		return nil
	})

	// Without spec.tls the Secret is no longer watched.
	upd := ing.DeepCopy()
	upd.Spec.TLS = nil
	if _, err := cs.NetworkingV1().Ingresses("default").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-tls no longer watched", func() error {
		if got := w.secrets.watched(); slices.Contains(got, "default/web-tls") || !slices.Contains(got, "kube-system/default-cert") {
			return errorf("watched %v", got)
		}
		return nil
	})
}

// TestSecretsPlan: Secrets are watched by name up to perNamespace per
// namespace, beyond that by one informer for the namespace.
func TestSecretsPlan(t *testing.T) {
	used := map[string]bool{"kube-system/default-cert": true}
	for i := range perNamespace + 1 {
		used["busy/tls-"+string(rune('a'+i))] = true
	}
	for i := range perNamespace {
		used["quiet/tls-"+string(rune('a'+i))] = true
	}
	got := plan(used)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"busy/", "kube-system/default-cert"}
	for i := range perNamespace {
		want = append(want, "quiet/tls-"+string(rune('a'+i)))
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("plan = %v, want %v", keys, want)
	}
}

// TestSecretsBusyNamespace: an Ingress naming more than perNamespace
// Secrets of its namespace is served from one informer for that
// namespace, and every one of its certificates is in the first table.
func TestSecretsBusyNamespace(t *testing.T) {
	ing := ingress("many", "public-iks-k8s-nginx", "a.example.com", "web")
	objs := []runtime.Object{&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "public-iks-k8s-nginx"}}}
	var hosts []string
	for i := range perNamespace + 1 {
		h := fmt.Sprintf("h%d.example.com", i)
		hosts = append(hosts, h)
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{h}, SecretName: h})
		objs = append(objs, tlsSecret(t, "default", h, h))
	}
	cs := fake.NewClientset(append(objs, ing)...)
	s := &sink{}
	w := New(Config{Class: "public-iks-k8s-nginx"}, cs, s, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Synced()
	for _, h := range hosts {
		if got := servedCN(s.first, h); got != h {
			t.Errorf("first table serves %q for %s, want its Secret's certificate", got, h)
		}
	}
	if got := w.secrets.watched(); !slices.Equal(got, []string{"default/"}) {
		t.Errorf("watched %v, want one informer for namespace default", got)
	}
}
