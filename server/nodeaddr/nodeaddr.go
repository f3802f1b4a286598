// Package nodeaddr gives dual-homed nodes their IKS addresses: the
// private IP as InternalIP and the public IP as ExternalIP. A kubelet sets
// only one address family member (its --node-ip) and rewrites its
// addresses on every status update, unless it runs with
// --cloud-provider=external, where a cloud controller owns them. iks's
// agents run so on nodes with a public side, and this controller plays
// that cloud controller's part, as k3s's embedded one does: from the
// sides the agent publishes on its Node (package topology) it writes the
// addresses and removes the node.cloudprovider.kubernetes.io/uninitialized
// taint the kubelet registered with.
package nodeaddr

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/topology"
)

// TaintUninitialized is the taint a kubelet with --cloud-provider=external
// registers with, until its addresses are set.
const TaintUninitialized = "node.cloudprovider.kubernetes.io/uninitialized"

// Controller is the component.
type Controller struct {
	clients *kubeclients.Clients
	log     *slog.Logger
	regs    kubeclients.Registrations

	cs     kubernetes.Interface
	nodes  listerscorev1.NodeLister
	queue  workqueue.TypedRateLimitingInterface[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the controller over the process's shared clients.
func New(clients *kubeclients.Clients, log *slog.Logger) *Controller {
	return &Controller{clients: clients, log: log.With("component", "node-addresses")}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "node-addresses" }

// Init implements component.Component.
func (c *Controller) Init(context.Context) error { return nil }

// Start watches the nodes and runs the worker.
func (c *Controller) Start(ctx context.Context) error {
	cs, err := c.clients.Wait(ctx)
	if err != nil {
		return err
	}
	c.cs = cs
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "iks-node-addresses"})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	inf := c.clients.Informers().Core().V1().Nodes()
	c.nodes = inf.Lister()
	add := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.queue.Add(n.Name)
		}
	}
	if err := c.regs.Add(inf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: add,
		UpdateFunc: func(_, n any) { add(n) }}); err != nil {
		cancel()
		c.queue.ShutDown()
		return fmt.Errorf("node addresses: watch nodes: %w", err)
	}
	c.clients.Start()
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		wait.UntilWithContext(runCtx, c.work, time.Second)
	}()
	return nil
}

// Stop implements component.Component.
func (c *Controller) Stop(context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	c.queue.ShutDown()
	c.wg.Wait()
	c.cancel = nil
	return c.regs.RemoveAll()
}

func (c *Controller) work(ctx context.Context) {
	for {
		name, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, name); err != nil {
			utilruntime.HandleError(err)
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

// Addresses are a node's IKS addresses from its published sides: the
// private IP as InternalIP, the public one as ExternalIP, and the host
// name; nil while the node has not published a public side.
func Addresses(n *corev1.Node) []corev1.NodeAddress {
	priv, pub := topology.Of(n, topology.Private), topology.Of(n, topology.Public)
	if !priv.Valid() || !pub.Valid() {
		return nil
	}
	out := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: priv.CIDR.Addr().String()}}
	if pub.CIDR.Addr() != priv.CIDR.Addr() {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: pub.CIDR.Addr().String()})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
}

func (c *Controller) sync(ctx context.Context, name string) error {
	n, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	tainted := slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintUninitialized })
	want := Addresses(n)
	if want == nil {
		return nil // not a dual-homed node, or not published yet: the next update brings it here again
	}
	if !slices.Equal(n.Status.Addresses, want) {
		upd := n.DeepCopy()
		upd.Status.Addresses = want
		if n, err = c.cs.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set the addresses of node %s: %w", name, err)
		}
		c.log.Info("node addresses set", "node", name, "internal", want[0].Address, "external", external(want))
	}
	if tainted {
		upd := n.DeepCopy()
		upd.Spec.Taints = slices.DeleteFunc(upd.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintUninitialized })
		if _, err := c.cs.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("remove taint %s from node %s: %w", TaintUninitialized, name, err)
		}
		c.log.Info("node initialized", "node", name)
	}
	return nil
}

func external(as []corev1.NodeAddress) string {
	for _, a := range as {
		if a.Type == corev1.NodeExternalIP {
			return a.Address
		}
	}
	return ""
}
