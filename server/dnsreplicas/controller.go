// Package dnsreplicas scales the cluster DNS Deployment with the cluster:
// spec.replicas = min(Max, schedulable Ready nodes), at least 1. With the
// manifest's pod anti-affinity, two nodes get one CoreDNS each, so DNS
// survives the loss of either. It owns only spec.replicas (server-side
// apply with its own field manager), which the manifest leaves unset.
package dnsreplicas

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// FieldManager owns spec.replicas of the DNS Deployment.
const FieldManager = "iks-dns-replicas"

// resync re-checks the count even without events; retry follows a failed update.
const (
	resync = time.Minute
	retry  = 2 * time.Second
)

// Config of the controller.
type Config struct {
	Clients    *kubeclients.Clients
	Namespace  string // kube-system
	Deployment string // coredns
	Max        int32  // 2
}

// Controller is the replica controller component.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	regs   kubeclients.Registrations
	// observed, when set (tests), is called after every successful sync
	// with the usable node count it saw and the replicas it wants.
	observed func(ready int, want int32)
}

// New returns the controller.
func New(cfg Config, log *slog.Logger) *Controller {
	return &Controller{cfg: cfg, log: log.With("component", "dns-replicas")}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "dns-replicas" }

// Init implements component.Component.
func (c *Controller) Init(context.Context) error {
	if c.cfg.Max < 1 || c.cfg.Deployment == "" || c.cfg.Namespace == "" {
		return fmt.Errorf("dns-replicas: need a deployment, a namespace and Max >= 1, got %+v", c.cfg)
	}
	return nil
}

// Want is the replica count for the given number of schedulable Ready nodes.
func Want(readyNodes int, limit int32) int32 {
	return min(max(int32(readyNodes), 1), limit)
}

// Start starts the informers and the sync loop.
func (c *Controller) Start(ctx context.Context) error {
	cs, err := c.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	// Nodes from the process's shared informers; the Deployment from a
	// factory of its own, narrowed to that one object.
	depF := informers.NewSharedInformerFactoryWithOptions(cs, resync, informers.WithNamespace(c.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + c.cfg.Deployment }))
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() }, DeleteFunc: func(any) { poke() }}
	nodeInf := c.cfg.Clients.Informers().Core().V1().Nodes()
	depInf := depF.Apps().V1().Deployments()
	if err := c.regs.AddWithResync(nodeInf.Informer(), h, resync); err != nil {
		cancel()
		return fmt.Errorf("watch nodes: %w", err)
	}
	if _, err := depInf.Informer().AddEventHandler(h); err != nil {
		cancel()
		return fmt.Errorf("watch deployment: %w", err)
	}
	c.cfg.Clients.Start()
	depF.Start(runCtx.Done())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.regs.RemoveAll() //nolint:errcheck // nothing to report at stop
		defer depF.Shutdown()
		if !cache.WaitForCacheSync(runCtx.Done(), append(c.regs.Synced(), depInf.Informer().HasSynced)...) {
			return
		}
		c.loop(runCtx, cs, nodeInf.Lister(), depInf.Lister(), trigger, poke)
	}()
	return nil
}

func (c *Controller) loop(ctx context.Context, cs kubernetes.Interface, nodes corelisters.NodeLister,
	deps appslisters.DeploymentLister, trigger <-chan struct{}, poke func()) {
	poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
		if err := c.sync(ctx, cs, nodes, deps); err != nil {
			c.log.Warn("cannot set DNS replicas; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
				poke()
			}
		}
	}
}

func (c *Controller) sync(ctx context.Context, cs kubernetes.Interface, nodes corelisters.NodeLister, deps appslisters.DeploymentLister) (err error) {
	d, err := deps.Deployments(c.cfg.Namespace).Get(c.cfg.Deployment)
	if apierrors.IsNotFound(err) {
		return nil // not deployed (yet): its creation triggers a sync
	}
	if err != nil {
		return err
	}
	list, err := nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range list {
		if kubeutil.NodeReady(n) && !n.Spec.Unschedulable && !hasNoScheduleTaint(n) {
			ready++
		}
	}
	want := Want(ready, c.cfg.Max)
	if c.observed != nil {
		defer func() {
			if err == nil {
				c.observed(ready, want)
			}
		}()
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas == want {
		return nil
	}
	ac := appsv1ac.Deployment(c.cfg.Deployment, c.cfg.Namespace).WithSpec(appsv1ac.DeploymentSpec().WithReplicas(want))
	if _, err := cs.AppsV1().Deployments(c.cfg.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply replicas=%d to deployment %s/%s: %w", want, c.cfg.Namespace, c.cfg.Deployment, err)
	}
	c.log.Info("DNS replicas set", "deployment", c.cfg.Namespace+"/"+c.cfg.Deployment, "replicas", want, "ready-nodes", ready)
	return nil
}

// hasNoScheduleTaint reports a taint that keeps CoreDNS off the node
// (the manifest tolerates the control-plane taint and CriticalAddonsOnly).
func hasNoScheduleTaint(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if t.Key == "node-role.kubernetes.io/control-plane" || t.Key == "CriticalAddonsOnly" {
			continue
		}
		return true
	}
	return false
}

// Stop ends the loop and the informers.
func (c *Controller) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}
