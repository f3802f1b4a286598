package netctl

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/netapi"

	"github.com/iks-dev/iks/internal/api"
)

// Names of the access objects. (What nodes may read and write is granted
// in server/rbac; the policy here narrows their IPAMBlock writes.)
const (
	PolicyNodeOwnBlocks   = "iks-node-own-ipamblocks"
	nodeUserPrefix        = api.NodeUserPrefix
	nodeUserPrefixLen     = len(nodeUserPrefix)
	ownBlocksDeniedReason = metav1.StatusReasonForbidden
)

// ownBlocksPolicy denies a node (user system:node:<name>) any create,
// update or delete of an IPAMBlock, or of its status, whose spec.node is
// not <name>; on update both the old and the new object must be its own.
// Other users (admins, the garbage collector) are not matched.
func ownBlocksPolicy() (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	fail := admissionv1.Fail
	ops := []admissionv1.OperationType{admissionv1.Create, admissionv1.Update, admissionv1.Delete}
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyNodeOwnBlocks, Labels: managedBy},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: ops, Rule: admissionv1.Rule{
					APIGroups: []string{netapi.Group}, APIVersions: []string{"*"},
					Resources: []string{netapi.IPAMBlockPlural, netapi.IPAMBlockPlural + "/status"},
				}},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name:       "is-node",
				Expression: fmt.Sprintf("request.userInfo.username.startsWith('%s')", nodeUserPrefix),
			}},
			Variables: []admissionv1.Variable{{
				Name:       "node",
				Expression: fmt.Sprintf("request.userInfo.username.substring(%d)", nodeUserPrefixLen),
			}},
			Validations: []admissionv1.Validation{{
				Expression: "(oldObject == null || oldObject.spec.node == variables.node) && " +
					"(object == null || object.spec.node == variables.node)",
				MessageExpression: "'node ' + variables.node + ' may only create, change or delete its own IPAMBlocks (spec.node: ' + " +
					"(object != null ? object.spec.node : oldObject.spec.node) + ')'",
				Reason: ptr(ownBlocksDeniedReason),
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyNodeOwnBlocks, Labels: managedBy},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        PolicyNodeOwnBlocks,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return policy, binding
}

// EnsureAccess applies the admission policy that keeps each node to its
// own IPAMBlocks, and its binding.
func EnsureAccess(ctx context.Context, cs kubernetes.Interface) error {
	ar := cs.AdmissionregistrationV1()
	policy, binding := ownBlocksPolicy()
	if _, err := kubeapply.Apply(ctx, ar.ValidatingAdmissionPolicies(), policy); err != nil {
		return err
	}
	_, err := kubeapply.Apply(ctx, ar.ValidatingAdmissionPolicyBindings(), binding)
	return err
}
