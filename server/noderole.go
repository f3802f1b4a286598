package server

import (
	"context"
	"fmt"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// nodeRole labels the server's own node as the control plane (kubelets
// may not set node-role labels on themselves).
type nodeRole struct {
	kubeconfig, node string
	log              *slog.Logger
}

func (n *nodeRole) Name() string               { return "node-role" }
func (n *nodeRole) Init(context.Context) error { return nil }
func (n *nodeRole) Stop(context.Context) error { return nil }
func (n *nodeRole) Start(ctx context.Context) error {
	cs, err := kubeutil.Clientset(n.kubeconfig)
	if err != nil {
		return err
	}
	patch := []byte(`{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"true"}}}`)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, n.node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s: %w", n.node, err)
	}
	return nil
}
