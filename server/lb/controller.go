package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
)

// Config of the LoadBalancer controller.
type Config struct {
	// Clients are the process's shared clients (admin kubeconfig).
	Clients *kubeclients.Clients
	Subnets []lbpool.Subnet
	// ClusterCIDR and ServiceCIDR are refused in PortableSubnets.
	ClusterCIDR, ServiceCIDR netip.Prefix
}

// Controller is the component allocating LoadBalancer IPs.
type Controller struct {
	cfg Config
	log *slog.Logger

	cs     kubernetes.Interface
	lister listerscorev1.ServiceLister
	nodes  listerscorev1.NodeLister
	// placements is where each subnet lives, from the last node change.
	placements []lbpool.Placement
	regs       kubeclients.Registrations
	queue      workqueue.TypedRateLimitingInterface[string]
	recorder   record.EventRecorder
	broadcast  record.EventBroadcaster
	alloc      *Allocator
	// subnets are the pools in use: the flags' and the PortableSubnet
	// resources' (subnets.go); forcePlace re-places them after a change.
	subnets    []lbpool.Subnet
	forcePlace bool
	resources  cache.GenericLister
	// warned remembers the last warning per service, so a periodic resync
	// does not repeat the same event.
	warned map[string]string
	// unplaced remembers the IP last reported as held by no node.
	unplaced map[string]netip.Addr

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the controller.
func New(cfg Config, log *slog.Logger) *Controller {
	return &Controller{cfg: cfg, log: log.With("component", "lb"), alloc: NewAllocator(cfg.Subnets), warned: map[string]string{}, subnets: cfg.Subnets,
		unplaced: map[string]netip.Addr{}}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "lb" }

// Init implements component.Component.
func (c *Controller) Init(context.Context) error { return nil }

// Start publishes pools and RBAC, rebuilds allocations from the API and
// starts the worker.
func (c *Controller) Start(ctx context.Context) error {
	cs, err := c.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	c.cs = cs
	dyn, err := c.resourceClient(ctx)
	if err != nil {
		return err
	}
	if err := EnsureAPIObjects(ctx, cs, c.subnets); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.broadcast = record.NewBroadcaster(record.WithContext(runCtx))
	c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	c.recorder = c.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "iks-lb-controller"})
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "iks-lb"})

	f := c.cfg.Clients.Informers()
	inf := f.Core().V1().Services()
	c.lister = inf.Lister()
	nodes := f.Core().V1().Nodes()
	c.nodes = nodes.Lister()
	if err := c.regs.Add(nodes.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.queue.Add(placementKey) },
		UpdateFunc: func(any, any) { c.queue.Add(placementKey) },
		DeleteFunc: func(any) { c.queue.Add(placementKey) },
	}); err != nil {
		return errors.Join(fmt.Errorf("watch nodes: %w", err), c.Stop(ctx))
	}
	if err := c.regs.Add(inf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, n any) { c.enqueue(n) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return errors.Join(fmt.Errorf("watch services: %w", err), c.Stop(ctx))
	}
	c.cfg.Clients.Start()
	synced := c.regs.Synced()
	if dyn != nil {
		hs, err := c.watchResources()
		if err != nil {
			return errors.Join(err, c.Stop(ctx))
		}
		synced = append(synced, hs)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return errors.Join(c.Stop(ctx), fmt.Errorf("list Services, Nodes and PortableSubnets from the apiserver did not complete before start-up ended: %w; check kube-apiserver's log (component=kube-apiserver) and the admin kubeconfig %s", context.Cause(ctx), c.cfg.Clients.Kubeconfig()))
	}
	c.resync(ctx)
	c.replace()
	c.rebuild()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		wait.UntilWithContext(runCtx, c.work, time.Second)
	}()
	c.log.Info("LoadBalancer controller running", "subnets", subnetStrings(c.subnets))
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
	c.broadcast.Shutdown()
	c.cancel = nil
	return c.regs.RemoveAll()
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// rebuild re-creates the allocations from the Services' status, oldest
// Service first, so an IP stays with the Service that had it.
func (c *Controller) rebuild() {
	svcs, _ := c.lister.List(everything())
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	n := 0
	for _, s := range svcs {
		if !managed(s) {
			continue
		}
		for _, ip := range statusIPs(s) {
			if _, ok := lbpool.Find(c.subnets, ip); !ok {
				continue
			}
			if err := c.alloc.Assign(key(s), ip); err != nil {
				c.log.Warn("not keeping a LoadBalancer IP found in a service's status", "service", key(s), "ip", ip, "err", err)
				continue
			}
			n++
			break
		}
	}
	c.log.Info("LoadBalancer allocations rebuilt from the API", "allocations", n)
}

func (c *Controller) work(ctx context.Context) {
	for {
		k, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.sync(ctx, k)
		if err != nil {
			c.log.Warn("LoadBalancer sync failed, retrying", "service", k, "err", err)
			c.queue.AddRateLimited(k)
		} else {
			c.queue.Forget(k)
		}
		c.queue.Done(k)
	}
}

// sync reconciles one Service, or the placement of the subnets.
func (c *Controller) sync(ctx context.Context, k string) error {
	if k == subnetsKey {
		c.resync(ctx)
		return nil
	}
	if k == placementKey {
		if c.replace() {
			for _, s := range c.managedServices() {
				c.queue.Add(key(s))
			}
		}
		return nil
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(k)
	svc, err := c.lister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.release(k)
		return nil
	}
	if err != nil {
		return err
	}
	if !managed(svc) {
		c.release(k)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && c.ownsStatus(svc) {
			return c.setStatus(ctx, svc, netip.Addr{})
		}
		return nil
	}
	req, err := request(svc)
	if err != nil {
		c.warn(svc, ReasonBadRequest, err.Error())
		return nil
	}
	ip, err := c.alloc.Allocate(k, req)
	if err != nil {
		var ae *AllocError
		if !errors.As(err, &ae) {
			return err
		}
		c.warn(svc, ae.Reason, ae.Msg)
		if _, held := c.alloc.Lookup(k); !held && c.ownsStatus(svc) {
			return c.setStatus(ctx, svc, netip.Addr{})
		}
		return nil
	}
	delete(c.warned, k)
	c.warnUnplaced(svc, ip)
	if cur := statusIPs(svc); len(cur) == 1 && cur[0] == ip {
		return nil
	}
	if err := c.setStatus(ctx, svc, ip); err != nil {
		return err
	}
	s, _ := lbpool.Find(c.subnets, ip)
	c.recorder.Eventf(svc, corev1.EventTypeNormal, "LoadBalancerIPAllocated", "allocated %s from the %s portable subnet %s", ip, s.Kind, s.Prefix)
	c.log.Info("LoadBalancer IP allocated", "service", k, "ip", ip, "pool", s.Kind, "subnet", s.Prefix)
	return nil
}

// release frees a Service's IP and retries the Services waiting for one.
func (c *Controller) release(k string) {
	delete(c.warned, k)
	ip, held := c.alloc.Lookup(k)
	if !c.alloc.Release(k) {
		return
	}
	c.log.Info("LoadBalancer IP released", "service", k, "ip", ip)
	// The IP's election Lease goes too; its holder sees the IP leave the
	// Services and withdraws it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := c.cs.CoordinationV1().Leases(lbpool.Namespace).Delete(ctx, lbpool.LeaseName(ip), metav1.DeleteOptions{})
	cancel()
	if err != nil && !apierrors.IsNotFound(err) {
		c.log.Warn("cannot delete the election Lease of a released IP", "ip", ip, "err", err)
	}
	svcs, _ := c.lister.List(everything())
	for _, s := range svcs {
		if managed(s) && held {
			if _, has := c.alloc.Lookup(key(s)); !has {
				c.queue.Add(key(s))
			}
		}
	}
}

func (c *Controller) warn(svc *corev1.Service, reason, msg string) {
	k := key(svc)
	if c.warned[k] == reason+msg {
		return
	}
	c.warned[k] = reason + msg
	c.recorder.Event(svc, corev1.EventTypeWarning, reason, msg)
	c.log.Warn("LoadBalancer service left pending", "service", k, "reason", reason, "msg", msg)
}

// ownsStatus reports whether the status names an IP of the pools.
func (c *Controller) ownsStatus(svc *corev1.Service) bool {
	for _, ip := range statusIPs(svc) {
		if _, ok := lbpool.Find(c.subnets, ip); ok {
			return true
		}
	}
	return false
}

// setStatus writes ip (or clears the status for an invalid ip).
func (c *Controller) setStatus(ctx context.Context, svc *corev1.Service, ip netip.Addr) error {
	upd := svc.DeepCopy()
	upd.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	if ip.IsValid() {
		upd.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	}
	if _, err := c.cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: "iks-lb-controller"}); err != nil {
		return fmt.Errorf("update status of service %s: %w", key(svc), err)
	}
	return nil
}

// managed reports whether the controller allocates for svc: type
// LoadBalancer without a loadBalancerClass of another implementation.
func managed(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

// request reads the pool and IP a Service asks for.
func request(svc *corev1.Service) (Request, error) {
	typ, set := svc.Annotations[lbpool.AnnotationIPType]
	kind, err := lbpool.ParseKind(typ)
	if err != nil {
		return Request{}, err
	}
	r := Request{Kind: kind, KindSet: set}
	if z, ok := svc.Annotations[lbpool.AnnotationZone]; ok {
		z = strings.TrimSpace(z)
		if problem := topology.ValidZone(z); problem != "" {
			return Request{}, fmt.Errorf("annotation %s=%q is not a zone name (%s): set it to the zone of the nodes that should hold the IP (their label %s)", lbpool.AnnotationZone, z, problem, topology.LabelZone)
		}
		r.Zone = z
	}
	specIP, annIP := strings.TrimSpace(svc.Spec.LoadBalancerIP), strings.TrimSpace(svc.Annotations[lbpool.AnnotationIP])
	if specIP != "" && annIP != "" && specIP != annIP {
		return Request{}, fmt.Errorf("spec.loadBalancerIP %s and annotation %s=%s ask for different IPs: set only one", specIP, lbpool.AnnotationIP, annIP)
	}
	want := specIP
	if want == "" {
		want = annIP
	}
	if want != "" {
		ip, err := netip.ParseAddr(want)
		if err != nil || !ip.Is4() {
			return Request{}, fmt.Errorf("requested LoadBalancer IP %q is not an IPv4 address: set spec.loadBalancerIP or %s to a free IP of the pool", want, lbpool.AnnotationIP)
		}
		r.IP = ip
	}
	return r, nil
}

func statusIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

func key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

func subnetStrings(ss []lbpool.Subnet) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s.Kind) + ":" + s.String()
	}
	return out
}
