package csrapprove

import (
	"context"
	"fmt"
	"slices"
	"strings"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/nodeclaim"

	"github.com/iks-dev/iks/internal/api"
)

// Node-name claims (see package nodeclaim): a joining agent claims its
// node name with a CSR for nodeclaim.SignerName; the approver records the
// first key that claims a name and denies any other.

const (
	userBootstrapPrefix = "system:bootstrap:"
	groupBootstrappers  = "system:bootstrappers"
	// nodeKeyPrefix marks queue keys of deleted Nodes (CSR names cannot
	// contain '/').
	nodeKeyPrefix = "node/"
)

// isPendingClaim reports whether csr is a node-name claim nobody has
// decided on yet.
func isPendingClaim(csr *certv1.CertificateSigningRequest) bool {
	if csr.Spec.SignerName != nodeclaim.SignerName {
		return false
	}
	return !decided(csr)
}

// claimDecision is the outcome of checking one claim.
type claimDecision struct {
	approve bool
	// record: the name is free; record hash as its owner before approving.
	record bool
	node   string
	hash   string
	// reason says why the claim is denied ("" when approved).
	reason string
}

// decideClaim checks a pending claim against the recorded owner of the
// name (secret, nil if none) and the Node of that name (nil if none).
func decideClaim(csr *certv1.CertificateSigningRequest, node *corev1.Node, secret *corev1.Secret) claimDecision {
	name, hash, err := nodeclaim.ParseRequest(csr.Spec.Request)
	d := claimDecision{node: name, hash: hash}
	deny := func(format string, a ...any) claimDecision {
		d.reason = fmt.Sprintf(format, a...)
		return d
	}
	switch {
	case err != nil:
		return deny("%v", err)
	case !strings.HasPrefix(csr.Spec.Username, userBootstrapPrefix) || !slices.Contains(csr.Spec.Groups, groupBootstrappers):
		return deny("requester %q is not a join token (system:bootstrap:<id>); only joining agents claim node names", csr.Spec.Username)
	}
	if e := validation.IsDNS1123Subdomain(name); len(e) > 0 {
		return deny("node name %q is not a valid Kubernetes node name (%s)", name, strings.Join(e, "; "))
	}
	if secret != nil {
		if string(secret.Data[nodeclaim.HashKey]) == hash {
			d.approve = true
			return d
		}
		return deny("node name %q is already taken by another machine (its node password differs from this machine's)", name)
	}
	if node != nil {
		return deny("node name %q is already taken by node %s, which joined without a node password "+
			"(the server's own node, or a node that joined before node passwords existed)", name, name)
	}
	d.approve, d.record = true, true
	return d
}

// syncClaim decides on one pending claim: records and approves, or denies.
func (a *Approver) syncClaim(ctx context.Context, csr *certv1.CertificateSigningRequest) error {
	name, _, _ := nodeclaim.ParseRequest(csr.Spec.Request)
	var (
		node   *corev1.Node
		secret *corev1.Secret
		err    error
	)
	if validation.IsDNS1123Subdomain(name) == nil {
		if node, err = a.nodes.Get(name); apierrors.IsNotFound(err) {
			node = nil
		} else if err != nil {
			return err
		}
		// Read the Secret from the apiserver, not a cache: two claims of one
		// name must not both see it missing.
		secret, err = a.cs.CoreV1().Secrets(nodeclaim.Namespace).Get(ctx, nodeclaim.SecretName(name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			secret = nil
		} else if err != nil {
			return fmt.Errorf("read node password of %s: %w", name, err)
		}
	}
	d := decideClaim(csr, node, secret)
	if d.record {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: nodeclaim.SecretName(d.node), Namespace: nodeclaim.Namespace,
				Labels: map[string]string{api.ManagedByLabel: api.ManagedBy, "iks.io/node": d.node}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{nodeclaim.HashKey: []byte(d.hash)},
		}
		// AlreadyExists: another claim won the race; decide again.
		if _, err := a.cs.CoreV1().Secrets(nodeclaim.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("record node password of %s: %w", d.node, err)
		}
	}
	cond := certv1.CertificateSigningRequestCondition{Type: certv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "IKSNodeNameClaimed", Message: "node name " + d.node + " belongs to this machine", LastUpdateTime: metav1.Now()}
	if !d.approve {
		cond.Type, cond.Reason, cond.Message = certv1.CertificateDenied, "IKSNodeNameTaken", d.reason
	}
	upd := csr.DeepCopy()
	upd.Status.Conditions = append(upd.Status.Conditions, cond)
	if _, err := a.cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("decide node-name claim %s: %w", csr.Name, err)
	}
	if d.approve {
		a.log.Info("node-name claim approved", "csr", csr.Name, "node", d.node, "new", d.record)
	} else {
		a.log.Warn("node-name claim denied: "+d.reason, "csr", csr.Name, "requester", csr.Spec.Username)
	}
	return nil
}

// nodeDeleted queues the release of a deleted Node's name.
func (a *Approver) nodeDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		a.queue.Add(nodeKeyPrefix + n.Name)
	}
}

// releaseName deletes the node password of a deleted Node, unless a Node
// of that name exists again.
func (a *Approver) releaseName(ctx context.Context, name string) error {
	if _, err := a.nodes.Get(name); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	err := a.cs.CoreV1().Secrets(nodeclaim.Namespace).Delete(ctx, nodeclaim.SecretName(name), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release node name %s: %w", name, err)
	}
	if err == nil {
		a.log.Info("node deleted: its name is free to join again", "node", name)
	}
	return nil
}
