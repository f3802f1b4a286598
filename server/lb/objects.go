package lb

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/server/rbac"
)

func everything() labels.Selector { return labels.Everything() }

// EnsureAPIObjects applies what the speakers need: the namespace iks-lb
// for the per-IP Leases, the ConfigMap kube-system/iks-portable-subnets
// with the pools, and the speakers' RBAC (rbac.LBSpeaker).
func EnsureAPIObjects(ctx context.Context, cs kubernetes.Interface, subnets []lbpool.Subnet) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lbpool.Namespace}}
	if _, err := kubeapply.Apply(ctx, cs.CoreV1().Namespaces(), ns); err != nil {
		return err
	}
	// Only Leases live there: its default ServiceAccount mounts no token.
	if _, err := kubeapply.Apply(ctx, cs.CoreV1().ServiceAccounts(ns.Name), rbac.NoAutomountServiceAccount(ns.Name)); err != nil {
		return err
	}
	data, err := lbpool.Encode(subnets)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: lbpool.ConfigMapName, Namespace: lbpool.ConfigMapNamespace},
		Data: map[string]string{lbpool.ConfigMapKey: data}}
	if _, err := kubeapply.Apply(ctx, cs.CoreV1().ConfigMaps(cm.Namespace), cm); err != nil {
		return err
	}
	return rbac.Apply(ctx, cs, rbac.LBSpeaker())
}
