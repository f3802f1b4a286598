package vpn

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/server/rbac"
)

// applyDeployment applies d (server-side apply; a new spec hash in the
// template rolls the gateway pod).
func (c *Controller) applyDeployment(ctx context.Context, d *appsv1.Deployment) error {
	_, err := kubeapply.Apply(ctx, c.cs.AppsV1().Deployments(d.Namespace), d)
	return err
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

// ensureAccess applies the gateway's ServiceAccount and RBAC.
func (c *Controller) ensureAccess(ctx context.Context) error {
	sa, roles, bindings := accessObjects()
	if _, err := kubeapply.Apply(ctx, c.cs.CoreV1().ServiceAccounts(sa.Namespace), sa); err != nil {
		return err
	}
	role, rb := leaseAccess()
	objs := []kubeapply.Object{role, rb}
	for _, r := range roles {
		objs = append(objs, r)
	}
	for _, b := range bindings {
		objs = append(objs, b)
	}
	return rbac.Apply(ctx, c.cs, objs)
}
