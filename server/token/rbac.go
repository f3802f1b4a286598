package token

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Upstream ClusterRoles (created by kube-apiserver's RBAC bootstrap).
const (
	roleNodeBootstrapper = "system:node-bootstrapper"
	roleNodeClient       = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	roleSelfNodeClient   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	groupNodes           = "system:nodes"
	roleNodeProxier      = "system:node-proxier"
)

// BindingNodeProxier lets every node's kube-proxy, which runs with the
// kubelet's identity (system:node:NAME), read Services, EndpointSlices
// and Nodes and write Events: upstream's kube-proxy role, nothing more.
const BindingNodeProxier = "iks-node-proxier"

// Bindings returns the ClusterRoleBindings that let join tokens bootstrap
// kubelets: the token group may create node-client CSRs, which
// kube-controller-manager's csrapproving controller then approves, and
// nodes may renew their own client certificates.
func Bindings() []*rbacv1.ClusterRoleBinding {
	bind := func(name, group, role string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "iks"}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}},
		}
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("iks-kubelet-bootstrap", NodeGroup, roleNodeBootstrapper),
		bind("iks-node-autoapprove-bootstrap", NodeGroup, roleNodeClient),
		bind("iks-node-autoapprove-certificate-rotation", groupNodes, roleSelfNodeClient),
		// The routing agent peers with every other node: it lists Nodes,
		// which the Node authorizer leaves to RBAC (a node may read only
		// its own Node object otherwise).
		bind(RoleNodeRouting, groupNodes, RoleNodeRouting),
		// The Node authorizer has no opinion on Services and
		// EndpointSlices; NodeRestriction admits only writes of a node's
		// own objects, and kube-proxy writes nothing but Events.
		bind(BindingNodeProxier, groupNodes, roleNodeProxier),
	}
}

// RoleNodeRouting may read all Nodes (the BGP mesh's peers).
const RoleNodeRouting = "iks-node-routing"

// nodeRoutingRole is the ClusterRole behind RoleNodeRouting.
func nodeRoutingRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: RoleNodeRouting, Labels: map[string]string{"app.kubernetes.io/managed-by": "iks"}},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}}},
	}
}

// EnsureRBAC creates or corrects the Bindings. A binding whose roleRef
// differs is replaced (roleRef is immutable); differing subjects or labels
// are updated.
func EnsureRBAC(ctx context.Context, cs kubernetes.Interface) error {
	role := nodeRoutingRole()
	if have, err := cs.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get ClusterRole %s: %w", role.Name, err)
	} else if !reflect.DeepEqual(have.Rules, role.Rules) {
		upd := have.DeepCopy()
		upd.Rules = role.Rules
		if _, err := cs.RbacV1().ClusterRoles().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ClusterRole %s: %w", role.Name, err)
		}
	}
	crbs := cs.RbacV1().ClusterRoleBindings()
	for _, want := range Bindings() {
		have, err := crbs.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := crbs.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
			}
			continue
		case err != nil:
			return fmt.Errorf("get ClusterRoleBinding %s: %w", want.Name, err)
		}
		if have.RoleRef != want.RoleRef {
			if err := crbs.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("replace ClusterRoleBinding %s (roleRef %s): %w", want.Name, have.RoleRef.Name, err)
			}
			if _, err := crbs.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
			}
			continue
		}
		if slices.Equal(have.Subjects, want.Subjects) && have.Labels["app.kubernetes.io/managed-by"] == "iks" {
			continue
		}
		upd := have.DeepCopy()
		upd.Subjects = want.Subjects
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		upd.Labels["app.kubernetes.io/managed-by"] = "iks"
		if _, err := crbs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ClusterRoleBinding %s: %w", want.Name, err)
		}
	}
	return nil
}
