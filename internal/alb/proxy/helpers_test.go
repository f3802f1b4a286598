package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/alb/route"
)

func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// buildTable: one Ingress "test" with a Prefix / rule per host to a
// Service named after the host whose endpoints are addrs; tlsHost adds
// every host to spec.tls with a certificate named after it.
func buildTable(t *testing.T, ann map[string]string, tlsHost bool, hosts map[string][]string) *route.Table {
	t.Helper()
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: "ns", Annotations: ann}}
	secrets := map[string]*corev1.Secret{}
	pt := networkingv1.PathTypePrefix
	for h := range hosts {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: h, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: h, Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}})
		if tlsHost {
			c, k := selfSigned(t, h)
			secrets[h] = &corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: c, corev1.TLSPrivateKeyKey: k}}
			ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{h}, SecretName: h})
		}
	}
	dc, dk := selfSigned(t, "default")
	in := route.Input{Ingresses: []*networkingv1.Ingress{ing}, Global: route.DefaultGlobal(),
		Service: func(_, name string) *corev1.Service {
			if _, ok := hosts[name]; !ok {
				return nil
			}
			return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		},
		Slices: func(_, name string) []*discoveryv1.EndpointSlice {
			// One slice per address: the test servers listen on different ports.
			var out []*discoveryv1.EndpointSlice
			for _, a := range hosts[name] {
				host, port, _ := net.SplitHostPort(a)
				n, _ := strconv.Atoi(port)
				out = append(out, &discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host}}},
					Ports: []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To(int32(n))}}})
			}
			return out
		},
		Secret: func(_, name string) *corev1.Secret { return secrets[name] },
	}
	if c, err := tlsPair(dc, dk); err == nil {
		in.DefaultCert = c
	}
	tb, probs := route.Build(in)
	if len(probs) > 0 {
		t.Fatalf("build: %+v", probs)
	}
	return tb
}

func tlsPair(c, k []byte) (*tls.Certificate, error) {
	p, err := tls.X509KeyPair(c, k)
	return &p, err
}
