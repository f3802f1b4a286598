package csrapprove

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	certutil "k8s.io/client-go/util/cert"

	"github.com/iks-dev/iks/internal/nodeclaim"
)

// joinClientCSR is a kubelet client request of node-1 with a join token.
func joinClientCSR(t *testing.T, override func(*csrSpec)) *certv1.CertificateSigningRequest {
	s := csrSpec{user: "system:bootstrap:abcdef", groups: []string{"system:bootstrappers", "system:bootstrappers:iks:node", "system:authenticated"},
		cn: "system:node:node-1", dns: []string{}, ips: []string{}, signer: certv1.KubeAPIServerClientKubeletSignerName,
		usages: []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth}}
	if override != nil {
		override(&s)
	}
	return newCSR(t, s)
}

func TestJoinClientApproval(t *testing.T) {
	claim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: nodeclaim.SecretName("node-1"), Namespace: nodeclaim.Namespace}}
	for _, c := range []struct {
		name    string
		csr     func(t *testing.T) *certv1.CertificateSigningRequest
		claimed bool
		allowed bool
		want    bool
	}{
		{"claimed name, nodeclient allowed: approved", func(t *testing.T) *certv1.CertificateSigningRequest { return joinClientCSR(t, nil) }, true, true, true},
		{"name never claimed: left to kube-controller-manager", func(t *testing.T) *certv1.CertificateSigningRequest { return joinClientCSR(t, nil) }, false, true, false},
		{"nodeclient not allowed: left pending", func(t *testing.T) *certv1.CertificateSigningRequest { return joinClientCSR(t, nil) }, true, false, false},
		{"an IP SAN is no kubelet client request", func(t *testing.T) *certv1.CertificateSigningRequest {
			return joinClientCSR(t, func(s *csrSpec) { s.ips = []string{"10.0.0.7"} })
		}, true, true, false},
		{"server auth usage is no kubelet client request", func(t *testing.T) *certv1.CertificateSigningRequest {
			return joinClientCSR(t, func(s *csrSpec) { s.usages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth} })
		}, true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			csr := c.csr(t)
			objs := []runtime.Object{csr}
			if c.claimed {
				objs = append(objs, claim)
			}
			cs := fake.NewClientset(objs...)
			var asked *authzv1.SubjectAccessReview
			cs.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
				asked = a.(clienttesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
				asked.Status.Allowed = c.allowed
				return true, asked, nil
			})
			if !isPendingJoinClient(csr) {
				t.Fatal("a join-token kubelet client CSR is not recognised as pending")
			}
			a := &Approver{cs: cs, log: slog.New(slog.DiscardHandler), cfg: Config{Signer: testSigner(t)}}
			if err := a.syncJoinClient(context.Background(), csr); err != nil {
				t.Fatal(err)
			}
			got, err := cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), csr.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if approved(got) != c.want {
				t.Errorf("approved = %v, want %v", approved(got), c.want)
			}
			if (len(got.Status.Certificate) > 0) != c.want {
				t.Errorf("certificate issued = %v, want %v", len(got.Status.Certificate) > 0, c.want)
			}
			if c.want {
				checkClientCert(t, a.cfg.Signer, got.Status.Certificate, "system:node:node-1")
			}
			if asked != nil {
				ra := asked.Spec.ResourceAttributes
				if asked.Spec.User != csr.Spec.Username || ra.Subresource != "nodeclient" || ra.Verb != "create" || ra.Resource != "certificatesigningrequests" {
					t.Errorf("SubjectAccessReview asked %+v for %s, want create certificatesigningrequests/nodeclient for the requester", ra, asked.Spec.User)
				}
			}
		})
	}
	// A kubelet's renewal (requested as the node) and a request already
	// decided are not this approver's.
	renewal := joinClientCSR(t, func(s *csrSpec) { s.user, s.groups = "system:node:node-1", []string{"system:nodes"} })
	decided := joinClientCSR(t, nil)
	decided.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateDenied, Status: corev1.ConditionTrue}}
	if isPendingJoinClient(renewal) || isPendingJoinClient(decided) {
		t.Error("a renewal or a decided CSR taken as a pending join client request")
	}
}

func testSigner(t *testing.T) *Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "test-ca"}, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(certFile, keyFile, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(certFile, filepath.Join(dir, "missing.key"), time.Hour); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("LoadSigner with a missing key: %v, want an error naming the file", err)
	}
	return s
}

// checkClientCert checks a certificate as kube-controller-manager's
// signer would have issued it: signed by the CA, the CSR's subject, client
// auth, a year (minus the 5 minutes backdated).
func checkClientCert(t *testing.T, s *Signer, certPEM []byte, cn string) {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := certs[0]
	if err := c.CheckSignatureFrom(s.CA.Certificate); err != nil {
		t.Errorf("certificate not signed by the cluster CA: %v", err)
	}
	if c.Subject.CommonName != cn || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject %v, want CN=%s O=system:nodes", c.Subject, cn)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.IsCA {
		t.Errorf("ext key usage %v (CA %v), want client auth only", c.ExtKeyUsage, c.IsCA)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < 365*24*time.Hour || d > 365*24*time.Hour+10*time.Minute {
		t.Errorf("validity %s, want a year", d)
	}
}

// kube-controller-manager's signer issuing first (our status write
// conflicts) leaves the CSR approved, and is no error.
func TestJoinClientSignRace(t *testing.T) {
	csr := joinClientCSR(t, nil)
	claim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: nodeclaim.SecretName("node-1"), Namespace: nodeclaim.Namespace}}
	cs := fake.NewClientset(csr, claim)
	cs.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		sar.Status.Allowed = true
		return true, sar, nil
	})
	statusWrites := 0
	cs.PrependReactor("update", "certificatesigningrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		statusWrites++
		return true, nil, apierrors.NewConflict(certv1.Resource("certificatesigningrequests"), csr.Name, errors.New("the object has been modified"))
	})
	a := &Approver{cs: cs, log: slog.New(slog.DiscardHandler), cfg: Config{Signer: testSigner(t)}}
	if err := a.syncJoinClient(context.Background(), csr); err != nil {
		t.Fatalf("a lost signing race is an error: %v", err)
	}
	got, err := cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), csr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !approved(got) || statusWrites != 1 {
		t.Errorf("approved %v after %d certificate writes, want approved after 1", approved(got), statusWrites)
	}
}
