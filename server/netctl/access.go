package netctl

import (
	"context"
	"fmt"
	"reflect"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/netapi"
)

// Names of the access objects.
const (
	RoleNodeIPAM          = "iks-node-ipam"
	RoleClusterNetwork    = "iks-cluster-network-reader"
	PolicyNodeOwnBlocks   = "iks-node-own-ipamblocks"
	groupNodes            = "system:nodes"
	nodeUserPrefix        = "system:node:"
	nodeUserPrefixLen     = len(nodeUserPrefix)
	ownBlocksDeniedReason = metav1.StatusReasonForbidden
)

// nodeIPAMRole lets nodes claim, list, re-parent, release and report
// IPAMBlocks; which blocks a node may write is narrowed to its own by the
// admission policy below.
func nodeIPAMRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: RoleNodeIPAM, Labels: managedBy},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{netapi.Group}, Resources: []string{netapi.IPAMBlockPlural},
				Verbs: []string{"create", "get", "list", "watch", "update", "delete"}},
			{APIGroups: []string{netapi.Group}, Resources: []string{netapi.IPAMBlockPlural + "/status"}, Verbs: []string{"update"}},
		},
	}
}

// clusterNetworkRole lets nodes read the address-plan ConfigMap and no
// other ConfigMap of kube-system.
func clusterNetworkRole() *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: netapi.ClusterNetworkNamespace, Name: RoleClusterNetwork, Labels: managedBy},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{netapi.ClusterNetworkName}, Verbs: []string{"get"}}},
	}
}

func nodesSubject() []rbacv1.Subject {
	return []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: groupNodes}}
}

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

// EnsureAccess creates or corrects the RBAC and admission objects.
func EnsureAccess(ctx context.Context, cs kubernetes.Interface) error {
	rbac := cs.RbacV1()
	role := nodeIPAMRole()
	if err := ensure(ctx, "ClusterRole "+role.Name,
		func() (any, error) { return rbac.ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}) },
		func() error { _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); return err },
		func(have any) (bool, error) {
			h := have.(*rbacv1.ClusterRole)
			if reflect.DeepEqual(h.Rules, role.Rules) {
				return false, nil
			}
			h.Rules = role.Rules
			_, err := rbac.ClusterRoles().Update(ctx, h, metav1.UpdateOptions{})
			return true, err
		}); err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RoleNodeIPAM, Labels: managedBy},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RoleNodeIPAM},
		Subjects: nodesSubject()}
	if err := ensure(ctx, "ClusterRoleBinding "+crb.Name,
		func() (any, error) { return rbac.ClusterRoleBindings().Get(ctx, crb.Name, metav1.GetOptions{}) },
		func() error {
			_, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
			return err
		},
		func(have any) (bool, error) {
			h := have.(*rbacv1.ClusterRoleBinding)
			if h.RoleRef != crb.RoleRef {
				return false, fmt.Errorf("ClusterRoleBinding %s refers to %s, not %s: delete it and restart the server", crb.Name, h.RoleRef.Name, RoleNodeIPAM)
			}
			if reflect.DeepEqual(h.Subjects, crb.Subjects) {
				return false, nil
			}
			h.Subjects = crb.Subjects
			_, err := rbac.ClusterRoleBindings().Update(ctx, h, metav1.UpdateOptions{})
			return true, err
		}); err != nil {
		return err
	}
	if err := ensureClusterNetworkAccess(ctx, cs); err != nil {
		return err
	}
	return ensurePolicy(ctx, cs)
}

func ensureClusterNetworkAccess(ctx context.Context, cs kubernetes.Interface) error {
	roles := cs.RbacV1().Roles(netapi.ClusterNetworkNamespace)
	role := clusterNetworkRole()
	if err := ensure(ctx, "Role kube-system/"+role.Name,
		func() (any, error) { return roles.Get(ctx, role.Name, metav1.GetOptions{}) },
		func() error { _, err := roles.Create(ctx, role, metav1.CreateOptions{}); return err },
		func(have any) (bool, error) {
			h := have.(*rbacv1.Role)
			if reflect.DeepEqual(h.Rules, role.Rules) {
				return false, nil
			}
			h.Rules = role.Rules
			_, err := roles.Update(ctx, h, metav1.UpdateOptions{})
			return true, err
		}); err != nil {
		return err
	}
	rbs := cs.RbacV1().RoleBindings(netapi.ClusterNetworkNamespace)
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: netapi.ClusterNetworkNamespace, Name: RoleClusterNetwork, Labels: managedBy},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RoleClusterNetwork},
		Subjects: nodesSubject()}
	return ensure(ctx, "RoleBinding kube-system/"+rb.Name,
		func() (any, error) { return rbs.Get(ctx, rb.Name, metav1.GetOptions{}) },
		func() error { _, err := rbs.Create(ctx, rb, metav1.CreateOptions{}); return err },
		func(have any) (bool, error) {
			h := have.(*rbacv1.RoleBinding)
			if h.RoleRef != rb.RoleRef {
				return false, fmt.Errorf("RoleBinding kube-system/%s refers to %s, not %s: delete it and restart the server", rb.Name, h.RoleRef.Name, RoleClusterNetwork)
			}
			if reflect.DeepEqual(h.Subjects, rb.Subjects) {
				return false, nil
			}
			h.Subjects = rb.Subjects
			_, err := rbs.Update(ctx, h, metav1.UpdateOptions{})
			return true, err
		})
}

func ensurePolicy(ctx context.Context, cs kubernetes.Interface) error {
	ar := cs.AdmissionregistrationV1()
	policy, binding := ownBlocksPolicy()
	if err := ensure(ctx, "ValidatingAdmissionPolicy "+policy.Name,
		func() (any, error) {
			return ar.ValidatingAdmissionPolicies().Get(ctx, policy.Name, metav1.GetOptions{})
		},
		func() error {
			_, err := ar.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})
			return err
		},
		func(have any) (bool, error) {
			h := have.(*admissionv1.ValidatingAdmissionPolicy)
			want := h.DeepCopy()
			want.Spec.FailurePolicy, want.Spec.MatchConditions = policy.Spec.FailurePolicy, policy.Spec.MatchConditions
			want.Spec.Variables, want.Spec.Validations = policy.Spec.Variables, policy.Spec.Validations
			want.Spec.MatchConstraints.ResourceRules = policy.Spec.MatchConstraints.ResourceRules
			if reflect.DeepEqual(want.Spec, h.Spec) {
				return false, nil
			}
			_, err := ar.ValidatingAdmissionPolicies().Update(ctx, want, metav1.UpdateOptions{})
			return true, err
		}); err != nil {
		return err
	}
	return ensure(ctx, "ValidatingAdmissionPolicyBinding "+binding.Name,
		func() (any, error) {
			return ar.ValidatingAdmissionPolicyBindings().Get(ctx, binding.Name, metav1.GetOptions{})
		},
		func() error {
			_, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{})
			return err
		},
		func(have any) (bool, error) {
			h := have.(*admissionv1.ValidatingAdmissionPolicyBinding)
			if h.Spec.PolicyName == binding.Spec.PolicyName && reflect.DeepEqual(h.Spec.ValidationActions, binding.Spec.ValidationActions) {
				return false, nil
			}
			h.Spec.PolicyName, h.Spec.ValidationActions = binding.Spec.PolicyName, binding.Spec.ValidationActions
			_, err := ar.ValidatingAdmissionPolicyBindings().Update(ctx, h, metav1.UpdateOptions{})
			return true, err
		})
}

// ensure is create-or-update for one object: get it; create it when it
// is missing; otherwise let update correct it.
func ensure(ctx context.Context, what string, get func() (any, error), create func() error, update func(any) (bool, error)) error {
	have, err := get()
	switch {
	case apierrors.IsNotFound(err):
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", what, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get %s: %w", what, err)
	}
	if _, err := update(have); err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	return nil
}
