package csrapprove

import (
	"context"
	"crypto"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	capihelper "k8s.io/kubernetes/pkg/apis/certificates"
	"k8s.io/kubernetes/pkg/controller/certificates/authority"

	"github.com/iks-dev/iks/internal/nodeclaim"
)

// Joining kubelets' client certificates (signer
// kubernetes.io/kube-apiserver-client-kubelet, requested with the join
// token): kube-controller-manager approves them by RBAC, but its approver
// took 1.1-1.8 s of a join here, the longest step before kubelet starts.
// This approver, which already watches every CSR, decides them the moment
// it sees them, by the same rules, and signs them as kube-controller-
// manager's signer would (its own code, package authority, with the same
// policy; kube-controller-manager stays the fallback for both, and still
// approves and signs the kubelets' renewals):
//
//   - the request is a kubelet client certificate (upstream's own check:
//     CN system:node:<name>, O system:nodes, no SANs, client usages);
//   - the requester is a join token (system:bootstrap:<id> in
//     system:bootstrappers);
//   - a SubjectAccessReview allows it to create
//     certificatesigningrequests/nodeclient (so revoking that grant stops
//     both approvers);
//
// and one more: the node name was claimed by a machine (its node password
// is recorded, see package nodeclaim), which every iks agent does before
// its kubelet asks. A request for an unclaimed name is left to
// kube-controller-manager, as before.

// isPendingJoinClient reports whether csr is a kubelet client certificate
// request from a join token that nobody has decided on yet.
func isPendingJoinClient(csr *certv1.CertificateSigningRequest) bool {
	if csr.Spec.SignerName != certv1.KubeAPIServerClientKubeletSignerName || len(csr.Status.Certificate) > 0 {
		return false
	}
	if !strings.HasPrefix(csr.Spec.Username, userBootstrapPrefix) || !slices.Contains(csr.Spec.Groups, groupBootstrappers) {
		return false
	}
	return !decided(csr)
}

// joinClientNode returns the node a join-token client CSR asks for, or
// why it is not a kubelet client certificate request.
func joinClientNode(csr *certv1.CertificateSigningRequest) (string, error) {
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return "", err
	}
	usages := sets.NewString()
	for _, u := range csr.Spec.Usages {
		usages.Insert(string(u))
	}
	if err := capihelper.ValidateKubeletClientCSR(req, usages); err != nil {
		return "", err
	}
	return strings.TrimPrefix(req.Subject.CommonName, nodeUserPrefix), nil
}

// syncJoinClient approves a join-token kubelet client CSR when the rules
// above hold; otherwise it leaves it to kube-controller-manager.
func (a *Approver) syncJoinClient(ctx context.Context, csr *certv1.CertificateSigningRequest) error {
	node, err := joinClientNode(csr)
	if err != nil {
		return nil // not ours to judge: kube-controller-manager reports it
	}
	if _, err := a.cs.CoreV1().Secrets(nodeclaim.Namespace).Get(ctx, nodeclaim.SecretName(node), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read node password of %s: %w", node, err)
	}
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range csr.Spec.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := a.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{Group: certv1.GroupName, Resource: "certificatesigningrequests",
			Verb: "create", Subresource: "nodeclient"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("check the nodeclient permission of %s: %w", csr.Spec.Username, err)
	}
	if !sar.Status.Allowed {
		return nil
	}
	upd := csr.DeepCopy()
	upd.Status.Conditions = append(upd.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AutoApproved",
		Message:        "iks approved the client certificate of joining node " + node + " (name claimed, nodeclient allowed)",
		LastUpdateTime: metav1.Now(),
	})
	upd, err = a.cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, upd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // kube-controller-manager decided first
	}
	if err != nil {
		return fmt.Errorf("approve CSR %s: %w", csr.Name, err)
	}
	signed := a.cfg.Signer != nil
	if signed {
		if err := a.sign(ctx, upd); apierrors.IsConflict(err) {
			// kube-controller-manager's signer saw the approval first.
			signed = false
		} else if err != nil {
			// Approved: kube-controller-manager's signer issues it.
			a.log.Warn("could not sign a joining node's client certificate; kube-controller-manager will", "csr", csr.Name, "err", err)
			signed = false
		}
	}
	a.log.Info("approved the client certificate of a joining node", "csr", csr.Name, "node", node, "signed", signed)
	return nil
}

// Signer issues kubelet client certificates with the cluster CA, as
// kube-controller-manager's kube-apiserver-client-kubelet signer does.
type Signer struct {
	// CA is the cluster CA (kube-controller-manager's
	// --cluster-signing-cert-file and -key-file).
	CA *authority.CertificateAuthority
	// TTL is the certificates' lifetime (its --cluster-signing-duration).
	TTL time.Duration
}

// LoadSigner reads the cluster CA's certificate and key files.
func LoadSigner(certFile, keyFile string, ttl time.Duration) (*Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA key: %w", err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parse the cluster CA %s: %w", certFile, err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse the cluster CA key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the cluster CA key %s cannot sign", keyFile)
	}
	return &Signer{CA: &authority.CertificateAuthority{RawCert: certPEM, RawKey: keyPEM, Certificate: certs[0], PrivateKey: signer}, TTL: ttl}, nil
}

// sign issues the approved csr's certificate; kube-controller-manager's
// signer skips a CSR that has one.
func (a *Approver) sign(ctx context.Context, csr *certv1.CertificateSigningRequest) error {
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return err
	}
	ttl := a.cfg.Signer.TTL
	if e := csr.Spec.ExpirationSeconds; e != nil {
		ttl = min(ttl, max(time.Duration(*e)*time.Second, 10*time.Minute))
	}
	der, err := a.cfg.Signer.CA.Sign(req.Raw, authority.PermissiveSigningPolicy{TTL: ttl, Usages: csr.Spec.Usages,
		Backdate: 5 * time.Minute, Short: 8 * time.Hour})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	csr = csr.DeepCopy()
	csr.Status.Certificate = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if _, err := a.cs.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("store the certificate: %w", err) // a conflict stays one (errors.As)
	}
	return nil
}
