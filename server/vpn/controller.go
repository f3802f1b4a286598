// Package vpn is the server side of the strongSwan VPN: it installs the
// VPNConnection CRD and its access rules, validates each connection
// (condition Valid, naming the field and the fix) and runs one gateway
// Deployment per valid connection. The gateway pod (cmd/iks-vpn) drives
// charon over VICI and reports the tunnel in the status; every agent
// routes (agent/vpnroute).
package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/server/netctl"
)

// Config of the VPN controller.
type Config struct {
	Kubeconfig string // admin
	Cluster    vpnconn.Cluster
	// Image is the gateway image (iks.local/strongswan:VERSION); empty
	// when the binary carries none: connections are then reported so.
	Image string
	// APIServer is the URL the gateway pods reach the API at.
	APIServer string
}

// Controller is the server component.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	queue  workqueue.TypedRateLimitingInterface[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the controller.
func New(cfg Config, log *slog.Logger) *Controller {
	return &Controller{cfg: cfg, log: log.With("component", "vpn")}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "vpn" }

// Init implements component.Component.
func (c *Controller) Init(context.Context) error { return nil }

// Start installs the CRD and access rules and starts the worker.
func (c *Controller) Start(ctx context.Context) error {
	rc, err := kubeutil.RESTConfig(c.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	if c.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return fmt.Errorf("vpn: client: %w", err)
	}
	if c.dyn, err = dynamic.NewForConfig(rc); err != nil {
		return fmt.Errorf("vpn: dynamic client: %w", err)
	}
	ext, err := netctl.APIExtensionsClient(rc)
	if err != nil {
		return err
	}
	err = kubeutil.Poll(ctx, time.Second, func(ctx context.Context) (bool, error) {
		if err := errors.Join(netctl.EnsureCRD(ctx, ext, CRD()), c.ensureAccess(ctx)); err != nil {
			c.log.Debug("VPN API not ready yet", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("vpn: install CRD %s: %w", vpnconn.CRDName, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "iks-vpn"})
	f := dynamicinformer.NewDynamicSharedInformerFactory(c.dyn, 15*time.Second)
	inf := f.ForResource(vpnconn.GVR).Informer()
	enqueue := func(o any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err == nil {
			c.queue.Add(k)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue}); err != nil {
		cancel()
		return fmt.Errorf("vpn: watch %s: %w", vpnconn.Resource, err)
	}
	f.Start(runCtx.Done())
	if err := c.watchSecrets(runCtx, inf.GetStore()); err != nil {
		cancel()
		return err
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for c.work(runCtx) {
		}
	}()
	go func() {
		defer c.wg.Done()
		c.watchGateways(runCtx)
	}()
	c.log.Info("VPN controller running", "crd", vpnconn.CRDName, "image", c.cfg.Image)
	return nil
}

// Stop implements component.Component.
func (c *Controller) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
		c.queue.ShutDown()
		c.wg.Wait()
	}
	return nil
}

func (c *Controller) work(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		c.log.Warn("VPNConnection sync failed; retrying", "name", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// sync validates one connection, runs or removes its gateway and
// reports condition Valid.
func (c *Controller) sync(ctx context.Context, name string) error {
	res := c.dyn.Resource(vpnconn.GVR)
	u, err := res.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // the garbage collector removes the Deployment
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	conn, err := vpnconn.FromUnstructured(u)
	if err != nil {
		return err
	}
	plan, verr := vpnconn.Validate(name, conn.Spec, c.cfg.Cluster)
	credDigest := ""
	if verr == nil {
		var serr error
		credDigest, serr = c.checkSecret(ctx, plan)
		verr = errors.Join(serr, c.checkLoadBalancerIP(ctx, plan), c.checkNonClusterNodes(ctx, plan))
	}
	if verr == nil && c.cfg.Image == "" {
		verr = errors.New("this iks binary carries no strongSwan gateway image: build it with `make` (scripts/build-assets.sh needs Debian's charon-systemd and libcharon-extra-plugins)")
	}
	cond := metav1.Condition{Type: vpnconn.ConditionValid, Status: metav1.ConditionTrue, Reason: vpnconn.ReasonValid,
		Message: "configuration accepted", ObservedGeneration: conn.Generation}
	owner := metav1.OwnerReference{APIVersion: vpnconn.Group + "/" + vpnconn.Version, Kind: vpnconn.Kind,
		Name: name, UID: u.GetUID(), Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}
	if verr != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, vpnconn.ReasonInvalidSpec, verr.Error()
		if err := errors.Join(c.removeGateway(ctx, name), c.applyService(ctx, name, nil, owner)); err != nil {
			return err
		}
	} else {
		if err := c.applyService(ctx, name, plan, owner); err != nil {
			return err
		}
		d, err := gatewayDeployment(conn, plan, c.cfg, credDigest, owner)
		if err != nil {
			return err
		}
		if err := c.applyDeployment(ctx, d); err != nil {
			return err
		}
	}
	return c.setValid(ctx, u, conn, cond)
}

// setValid writes condition Valid when it changed.
func (c *Controller) setValid(ctx context.Context, u *unstructured.Unstructured, conn *vpnconn.Conn, cond metav1.Condition) error {
	st := conn.Status
	if old := st.Condition(vpnconn.ConditionValid); old != nil && old.Status == cond.Status && old.Message == cond.Message &&
		old.ObservedGeneration == cond.ObservedGeneration && st.ObservedGeneration == conn.Generation {
		return nil
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	st.ObservedGeneration = conn.Generation
	if cond.Status == metav1.ConditionFalse {
		// No gateway runs: what the last one reported is gone with it.
		st.Gateway, st.IKE, st.Child = vpnconn.GatewayStatus{}, vpnconn.IKEStatus{}, vpnconn.ChildStatus{}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: vpnconn.ConditionEstablished, Status: metav1.ConditionFalse,
			Reason: vpnconn.ReasonInvalidSpec, Message: "no gateway runs while the configuration is invalid (see condition Valid)", ObservedGeneration: conn.Generation})
	}
	if cond.Status == metav1.ConditionFalse {
		c.log.Warn("VPNConnection invalid", "name", conn.Name, "reason", cond.Message)
	} else {
		c.log.Info("VPNConnection accepted; gateway deployed", "name", conn.Name, "deployment", vpnconn.Namespace+"/"+DeploymentName(conn.Name))
	}
	obj, err := vpnconn.StatusObject(st)
	if err != nil {
		return err
	}
	u = u.DeepCopy()
	u.Object["status"] = obj
	if _, err := c.dyn.Resource(vpnconn.GVR).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }
