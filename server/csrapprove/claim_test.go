package csrapprove

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/nodeclaim"
	"github.com/iks-dev/iks/internal/testlog"
)

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newClaim is a claim of node by key, as a joining agent creates it.
func newClaim(t *testing.T, name, node string, key crypto.Signer) *certv1.CertificateSigningRequest {
	t.Helper()
	req, err := nodeclaim.NewRequest(node, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: certv1.CertificateSigningRequestSpec{Request: req, SignerName: nodeclaim.SignerName,
			Usages:   []certv1.KeyUsage{certv1.UsageDigitalSignature},
			Username: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers", "system:authenticated"}},
	}
}

// waitDecided polls a CSR until it is approved or denied and returns the
// deciding condition.
func waitDecided(t *testing.T, ctx context.Context, cs *fake.Clientset, name string) certv1.CertificateSigningRequestCondition {
	t.Helper()
	var cond certv1.CertificateSigningRequestCondition
	err := kubeutil.Poll(ctx, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
		c, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, x := range c.Status.Conditions {
			if x.Type == certv1.CertificateApproved || x.Type == certv1.CertificateDenied {
				cond = x
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("claim %s was not decided: %v", name, err)
	}
	return cond
}

func TestClaimsFirstKeyOwnsTheNameUntilTheNodeIsDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// "server-node" registered without a claim (the server's own node).
	cs := fake.NewClientset(newNode("server-node", nil, "10.0.0.1"))
	startApprover(t, ctx, cs, testlog.New())
	create := func(c *certv1.CertificateSigningRequest) certv1.CertificateSigningRequestCondition {
		t.Helper()
		if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return waitDecided(t, ctx, cs, c.Name)
	}
	first, second := newKey(t), newKey(t)

	if c := create(newClaim(t, "a1", "worker", first)); c.Type != certv1.CertificateApproved {
		t.Fatalf("first claim of a free name: %s %s", c.Type, c.Message)
	}
	s, err := cs.CoreV1().Secrets(nodeclaim.Namespace).Get(ctx, nodeclaim.SecretName("worker"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node password not recorded: %v", err)
	}
	if len(s.Data[nodeclaim.HashKey]) != 64 {
		t.Errorf("recorded hash %q is not a SHA-256 hex digest", s.Data[nodeclaim.HashKey])
	}
	// The same machine again (a restart before kubelet finished joining).
	if c := create(newClaim(t, "a2", "worker", first)); c.Type != certv1.CertificateApproved {
		t.Errorf("same key claiming its own name again: %s %s", c.Type, c.Message)
	}
	// Another machine with the same name is denied, with the name.
	c := create(newClaim(t, "b1", "worker", second))
	if c.Type != certv1.CertificateDenied || !strings.Contains(c.Message, `"worker" is already taken by another machine`) {
		t.Errorf("second machine's claim: %s %q, want Denied naming the name", c.Type, c.Message)
	}
	// The server's own node is not up for grabs either.
	if c := create(newClaim(t, "b2", "server-node", second)); c.Type != certv1.CertificateDenied || !strings.Contains(c.Message, "server-node") {
		t.Errorf("claim of a registered node without password: %s %q, want Denied", c.Type, c.Message)
	}

	// Deleting the Node frees the name.
	if _, err := cs.CoreV1().Nodes().Create(ctx, newNode("worker", nil, "10.0.0.2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = kubeutil.Poll(ctx, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Secrets(nodeclaim.Namespace).Get(ctx, nodeclaim.SecretName("worker"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("node password of a deleted node was kept: %v", err)
	}
	if c := create(newClaim(t, "b3", "worker", second)); c.Type != certv1.CertificateApproved {
		t.Errorf("claim after the node was deleted: %s %q, want Approved", c.Type, c.Message)
	}
}

func TestDecideClaimRefusesNonBootstrapRequesters(t *testing.T) {
	c := newClaim(t, "x", "worker", newKey(t))
	c.Spec.Username, c.Spec.Groups = "system:node:worker", []string{"system:nodes"}
	if d := decideClaim(c, nil, nil); d.approve || !strings.Contains(d.reason, "not a join token") {
		t.Errorf("claim by a node identity: %+v, want denied", d)
	}
	c = newClaim(t, "y", "Not_A_Name", newKey(t))
	if d := decideClaim(c, nil, nil); d.approve || !strings.Contains(d.reason, "not a valid Kubernetes node name") {
		t.Errorf("claim of an invalid name: %+v, want denied", d)
	}
	c = newClaim(t, "z", "worker", newKey(t))
	c.Spec.Request = []byte("garbage")
	if d := decideClaim(c, nil, &corev1.Secret{}); d.approve {
		t.Errorf("garbage request approved: %+v", d)
	}
}
