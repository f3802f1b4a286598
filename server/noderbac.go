package server

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/server/rbac"
)

// nodeRBAC grants what nodes and joining agents may do (rbac.Nodes). It
// runs on every server right after the network API: the local node's
// IPAM, routing and kube-proxy use these grants, and agents need them to
// join, so they come before the server's tokens and controllers.
type nodeRBAC struct {
	kubeconfig string
}

func (n *nodeRBAC) Name() string               { return "node-rbac" }
func (n *nodeRBAC) Init(context.Context) error { return nil }
func (n *nodeRBAC) Stop(context.Context) error { return nil }

// Start applies the grants, retrying what a just-started apiserver may
// refuse for a moment (conflicts, timeouts, RBAC's own bootstrap).
func (n *nodeRBAC) Start(ctx context.Context) error {
	cs, err := kubeutil.Clientset(n.kubeconfig)
	if err != nil {
		return err
	}
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second}
	if err := retry.OnError(backoff, func(error) bool { return ctx.Err() == nil }, func() error {
		return rbac.Apply(ctx, cs, rbac.Nodes())
	}); err != nil {
		return fmt.Errorf("grant the nodes' RBAC: %w", err)
	}
	return nil
}
