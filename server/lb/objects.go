package lb

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/lbpool"
)

const (
	groupNodes = "system:nodes"
	// roleSpeaker is the ClusterRole nodes' speakers run with, besides
	// what the Node authorizer grants kubelets.
	roleSpeaker = "iks-lb-speaker"
	managedBy   = "app.kubernetes.io/managed-by"
)

var metav1UpdateOptions = metav1.UpdateOptions{FieldManager: "iks-lb-controller"}

func everything() labels.Selector { return labels.Everything() }

func meta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{managedBy: "iks"}}
}

// EnsureAPIObjects creates or updates what the speakers need:
//   - the namespace iks-lb for the per-IP Leases;
//   - the ConfigMap kube-system/iks-portable-subnets with the pools;
//   - RBAC, least privilege. Nodes (group system:nodes) may read Services,
//     EndpointSlices and Nodes (eligibility), that one ConfigMap, and
//     impersonate the single user iks:lb-speaker, who alone may write
//     Leases, and only in iks-lb. Impersonation is needed because the
//     NodeRestriction admission plugin refuses node identities any Lease
//     outside kube-node-lease.
func EnsureAPIObjects(ctx context.Context, cs kubernetes.Interface, subnets []lbpool.Subnet) error {
	ns := &corev1.Namespace{ObjectMeta: meta(lbpool.Namespace, "")}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", lbpool.Namespace, err)
	}
	data, err := lbpool.Encode(subnets)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: meta(lbpool.ConfigMapName, lbpool.ConfigMapNamespace), Data: map[string]string{lbpool.ConfigMapKey: data}}
	if err := ensure(ctx, cs.CoreV1().ConfigMaps(cm.Namespace), cm, func(have, want *corev1.ConfigMap) { have.Data = want.Data }); err != nil {
		return err
	}
	nodes := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: groupNodes}}
	read := []string{"get", "list", "watch"}
	cr := &rbacv1.ClusterRole{ObjectMeta: meta(roleSpeaker, ""), Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services", "nodes"}, Verbs: read},
		{APIGroups: []string{discoveryv1.GroupName}, Resources: []string{"endpointslices"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{lbpool.SpeakerUser}},
	}}
	roles := []*rbacv1.Role{
		{ObjectMeta: meta("iks-lb-pools", lbpool.ConfigMapNamespace), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: read, ResourceNames: []string{lbpool.ConfigMapName}}}},
		{ObjectMeta: meta(roleSpeaker, lbpool.Namespace), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}},
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: meta(roleSpeaker, ""), Subjects: nodes,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleSpeaker}}
	rbs := []*rbacv1.RoleBinding{
		{ObjectMeta: meta("iks-lb-pools", lbpool.ConfigMapNamespace), Subjects: nodes,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "iks-lb-pools"}},
		{ObjectMeta: meta(roleSpeaker, lbpool.Namespace),
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: lbpool.SpeakerUser}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleSpeaker}},
	}
	rbac := cs.RbacV1()
	if err := ensure(ctx, rbac.ClusterRoles(), cr, func(h, w *rbacv1.ClusterRole) { h.Rules = w.Rules }); err != nil {
		return err
	}
	if err := ensure(ctx, rbac.ClusterRoleBindings(), crb, func(h, w *rbacv1.ClusterRoleBinding) { h.Subjects = w.Subjects }); err != nil {
		return err
	}
	for _, r := range roles {
		if err := ensure(ctx, rbac.Roles(r.Namespace), r, func(h, w *rbacv1.Role) { h.Rules = w.Rules }); err != nil {
			return err
		}
	}
	for _, b := range rbs {
		if err := ensure(ctx, rbac.RoleBindings(b.Namespace), b, func(h, w *rbacv1.RoleBinding) { h.Subjects = w.Subjects }); err != nil {
			return err
		}
	}
	return nil
}

// client is the part of a typed client ensure needs.
type client[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// ensure creates want, or copies its content (set) onto the existing
// object and updates it. (RoleRefs never change here, so bindings update.)
func ensure[T interface {
	*E
	metav1.Object
}, E any](ctx context.Context, c client[T], want T, set func(have, want T)) error {
	have, err := c.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s/%s: %w", want.GetNamespace(), want.GetName(), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", want.GetNamespace(), want.GetName(), err)
	}
	set(have, want)
	if _, err := c.Update(ctx, have, metav1UpdateOptions); err != nil {
		return fmt.Errorf("update %s/%s: %w", want.GetNamespace(), want.GetName(), err)
	}
	return nil
}
