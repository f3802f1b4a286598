package vpn

import (
	"context"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// applyDeployment creates d or updates its template when it changed (a
// new spec hash rolls the gateway pod).
func (c *Controller) applyDeployment(ctx context.Context, d *appsv1.Deployment) error {
	deps := c.cs.AppsV1().Deployments(d.Namespace)
	have, err := deps.Get(ctx, d.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	if have.Spec.Template.Annotations[specHashAnnot] == d.Spec.Template.Annotations[specHashAnnot] &&
		reflect.DeepEqual(have.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.NodeSelector) {
		return nil
	}
	have = have.DeepCopy()
	have.Spec = d.Spec
	have.Labels = d.Labels
	if _, err := deps.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// removeGateway deletes a connection's gateway Deployment, if any.
func (c *Controller) removeGateway(ctx context.Context, conn string) error {
	fg := metav1.DeletePropagationForeground
	err := c.cs.AppsV1().Deployments(vpnconn.Namespace).Delete(ctx, DeploymentName(conn), metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete gateway of VPNConnection %s: %w", conn, err)
	}
	return nil
}

// ensureAccess creates or updates the ServiceAccount and RBAC objects.
func (c *Controller) ensureAccess(ctx context.Context) error {
	sa, roles, bindings := accessObjects()
	if _, err := c.cs.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	rbac := c.cs.RbacV1()
	for _, r := range roles {
		have, err := rbac.ClusterRoles().Get(ctx, r.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = rbac.ClusterRoles().Create(ctx, r, metav1.CreateOptions{})
		case err == nil && !reflect.DeepEqual(have.Rules, r.Rules):
			have.Rules = r.Rules
			_, err = rbac.ClusterRoles().Update(ctx, have, metav1.UpdateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ClusterRole %s: %w", r.Name, err)
		}
	}
	role, rb := leaseAccess()
	if _, err := rbac.Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("Role %s/%s: %w", role.Namespace, role.Name, err)
	}
	if _, err := rbac.RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err)
	}
	for _, b := range bindings {
		if _, err := rbac.ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ClusterRoleBinding %s: %w", b.Name, err)
		}
	}
	return nil
}
