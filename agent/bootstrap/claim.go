package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	token "github.com/iks-dev/iks/internal/jointoken"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/nodeclaim"
)

// ErrNodeNameTaken: another machine already joined with this node name.
var ErrNodeNameTaken = errors.New("join refused")

// ClaimTimeout bounds the wait for the server to decide on a claim.
const ClaimTimeout = 60 * time.Second

// Node is the identity a joining agent claims (see package nodeclaim).
type Node struct {
	// Name is the node name; "" joins without claiming one (tests of the
	// token check alone).
	Name string
	// KeyFile holds this machine's node password; it is created on the
	// first join, once the server is verified (nodeclaim.LoadOrCreateKey).
	KeyFile string
}

// claimName asks the server, authenticated with the bootstrap token over
// a connection that trusts only caPEM, to record node.Name as this
// machine's, and waits for its decision. A denial is ErrNodeNameTaken with
// the server's reason and what to do; API errors that a starting server
// gives are transient.
func claimName(ctx context.Context, u *url.URL, caPEM []byte, tok token.Token, node Node) error {
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: u.String(), BearerToken: tok.Bootstrap(),
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, Timeout: requestTimeout, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		return fmt.Errorf("client for %s: %w", u, err)
	}
	key, err := nodeclaim.LoadOrCreateKey(node.KeyFile)
	if err != nil {
		return err
	}
	req, err := nodeclaim.NewRequest(node.Name, key)
	if err != nil {
		return err
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-claim-" + node.Name + "-"},
		Spec: certv1.CertificateSigningRequestSpec{Request: req, SignerName: nodeclaim.SignerName,
			Usages: []certv1.KeyUsage{certv1.UsageDigitalSignature}},
	}, metav1.CreateOptions{})
	if err != nil {
		return apiError(ctx, u, "claim node name "+node.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, ClaimTimeout)
	defer cancel()
	var denied *certv1.CertificateSigningRequestCondition
	err = kubeutil.Poll(wctx, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		c, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil // a transient error; the deadline bounds it
		}
		for _, cond := range c.Status.Conditions {
			switch cond.Type {
			case certv1.CertificateApproved:
				return true, nil
			case certv1.CertificateDenied, certv1.CertificateFailed:
				denied = &cond
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the server at %s did not decide on this machine's claim of node name %s (CSR %s) within %s: "+
			"is it an iks server of the same version, and is its csr-approver running (see its log)?", u, node.Name, csr.Name, ClaimTimeout)
	}
	if denied == nil {
		return nil
	}
	return fmt.Errorf("%w: %s. Start this machine with a name of its own: "+
		"--node-name NAME, or --with-node-id to append a stable random id to the host name (cloned VMs share a host name); "+
		"or, if the machine that had this name is gone for good, delete its node on the server "+
		"(`iks kubectl delete node %s`) and start this agent again", ErrNodeNameTaken, denied.Message, node.Name)
}

// apiError classifies an API error of a join step: 401 is a rejected
// token, what a starting server answers is transient, the rest is final.
func apiError(ctx context.Context, u *url.URL, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the server at %s rejected the token during %s", ErrTokenRejected, u, what)
	case apierrors.IsForbidden(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return transient("server %s is not ready to %s: %w", u, what, err)
	case !isAPIStatus(err):
		// Not an answer of the apiserver: the network.
		return transient("server %s unreachable during %s: %w", u, what, err)
	default:
		return fmt.Errorf("%s at %s: %w", what, u, err)
	}
}

// isAPIStatus reports whether err carries an apiserver answer.
func isAPIStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}
