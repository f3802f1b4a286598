package token

import (
	"context"
	"fmt"
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
)

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
	}
}

// EnsureRBAC creates or corrects the Bindings. A binding whose roleRef
// differs is replaced (roleRef is immutable); differing subjects or labels
// are updated.
func EnsureRBAC(ctx context.Context, cs kubernetes.Interface) error {
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
