package csrapprove

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"testing"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// csrSpec describes a test CSR; zero values give a valid request from node-1.
type csrSpec struct {
	name     string
	user     string
	groups   []string
	cn       string
	orgs     []string
	dns      []string
	ips      []string
	emails   []string
	uris     []string
	usages   []certv1.KeyUsage
	signer   string
	badSig   bool
	override func(*certv1.CertificateSigningRequest)
}

func newCSR(t *testing.T, s csrSpec) *certv1.CertificateSigningRequest {
	t.Helper()
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.name, "csr-1")
	def(&s.user, "system:node:node-1")
	def(&s.cn, s.user)
	def(&s.signer, certv1.KubeletServingSignerName)
	if s.groups == nil {
		s.groups = []string{"system:nodes", "system:authenticated"}
	}
	if s.orgs == nil {
		s.orgs = []string{"system:nodes"}
	}
	if s.dns == nil && s.ips == nil {
		s.dns, s.ips = []string{"node-1"}, []string{"10.0.0.7"}
	}
	if s.usages == nil {
		s.usages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: s.cn, Organization: s.orgs},
		DNSNames:       s.dns,
		EmailAddresses: s.emails,
	}
	for _, ip := range s.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range s.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if s.badSig {
		der[len(der)-3] ^= 0xff
	}
	csr := &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, UID: types.UID("uid-" + s.name)},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: s.signer,
			Usages:     s.usages,
			Username:   s.user,
			Groups:     s.groups,
		},
	}
	if s.override != nil {
		s.override(csr)
	}
	return csr
}

func newNode(name string, annotations map[string]string, ips ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func approved(csr *certv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certv1.CertificateApproved && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
