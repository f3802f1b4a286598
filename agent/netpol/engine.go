package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// calicoWait bounds how long the first sync waits for Calico's resources.
const calicoWait = time.Minute

// Config of the engine.
type Config struct {
	NodeName string
	// Clients are the agent's shared clients (the kubelet's identity).
	Clients *kubeclients.Clients
	// VethPrefix is the name prefix of pods' host-side veths ("cali").
	VethPrefix string
	// NodeIP and PublicIP are the node's private and (optional) public
	// side: the engine keeps the node's host endpoints on their
	// interfaces (hostendpoints.go).
	NodeIP, PublicIP netip.Addr
}

// Engine is the network policy component.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	nft    knftables.Interface
	writer *Writer

	trigger chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	regs    kubeclients.Registrations

	mu     sync.Mutex
	synced bool
	err    error

	// chg collects what changed since the last sync (set by the
	// informers' handlers).
	chg struct {
		sync.Mutex
		full  bool
		dirty map[string]bool // pod keys
	}
	// Owned by the loop: the last Program programmed and the endpoints
	// it was compiled from, by pod key and by address.
	prog *Program
	eps  map[string]*Endpoint
	byIP map[string]string
	// contested are the addresses two pods claimed at the last full
	// sync: a change touching one recompiles.
	contested map[string]bool
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Engine {
	if cfg.VethPrefix == "" {
		cfg.VethPrefix = "cali"
	}
	return &Engine{cfg: cfg, log: log.With("component", "netpol"), trigger: make(chan struct{}, 1)}
}

// Name implements component.Component.
func (e *Engine) Name() string { return "network-policy" }

// Init checks that nftables works here. Without it the engine logs that
// policies are not enforced, and why, and does nothing.
func (e *Engine) Init(ctx context.Context) error {
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err == nil {
		tx := nft.NewTransaction()
		tx.Add(&knftables.Table{})
		tx.Add(&knftables.Chain{Name: "probe", Type: knftables.PtrTo(knftables.FilterType),
			Hook: knftables.PtrTo(knftables.ForwardHook), Priority: knftables.PtrTo(knftables.FilterPriority)})
		err = nft.Check(ctx, tx)
	}
	if err != nil {
		e.log.Warn("NetworkPolicies are NOT enforced on this node: nftables is unusable; install nftables (nft) on a kernel with nf_tables",
			"error", err)
		return nil
	}
	e.nft = nft
	e.writer = NewWriter(nft)
	return e.closeUntilSynced(ctx)
}

// closeUntilSynced installs, when the node has no policy table yet (first
// start, reboot), one that drops new pod traffic until the first sync
// replaces it: kubelet may start pods before the engine knows the
// policies, and no pod may talk before its policy is in place. The node's
// own traffic to its pods (probes) passes. A table left by the previous
// run stays in force until the first sync replaces it.
func (e *Engine) closeUntilSynced(ctx context.Context) error {
	if _, err := e.nft.List(ctx, "chains"); err == nil || !knftables.IsNotFound(err) {
		return nil
	}
	pods := "\"" + e.cfg.VethPrefix + "*\""
	tx := e.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("iks: network policy, closed until the first sync")})
	for name, hook := range baseChains {
		tx.Add(&knftables.Chain{Name: name, Type: knftables.PtrTo(knftables.FilterType),
			Hook: knftables.PtrTo(hook), Priority: knftables.PtrTo(knftables.FilterPriority)})
		tx.Add(&knftables.Rule{Chain: name, Rule: "ct state established,related accept"})
		tx.Add(&knftables.Rule{Chain: name, Rule: "iifname " + pods + " drop"})
		if name == ChainForward {
			tx.Add(&knftables.Rule{Chain: name, Rule: "oifname " + pods + " drop"})
		}
	}
	if err := e.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("install the closed network policy table: %w", err)
	}
	e.log.Info("pod traffic held until the network policies are programmed")
	return nil
}

// Start watches policies, pods and namespaces and programs the table.
func (e *Engine) Start(ctx context.Context) error {
	if e.nft == nil {
		return nil
	}
	cs, err := e.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	dyn := e.cfg.Clients.Dynamic()
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	// The agent's shared informers; only this engine watches Pods, so
	// it slims them (SetTransform must come before they start).
	f := e.cfg.Clients.Informers()
	pods, nss, nps, sas := f.Core().V1().Pods(), f.Core().V1().Namespaces(), f.Networking().V1().NetworkPolicies(), f.Core().V1().ServiceAccounts()
	if err := pods.Informer().SetTransform(slimPod); err != nil {
		cancel()
		return fmt.Errorf("pod informer: %w", err)
	}
	// A pod change re-checks only that pod (incremental.go); any other
	// change recompiles.
	podH := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { e.podChanged(o) },
		UpdateFunc: func(_, o any) { e.podChanged(o) },
		DeleteFunc: func(o any) { e.podChanged(o) },
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { e.changed() },
		UpdateFunc: func(any, any) { e.changed() },
		DeleteFunc: func(any) { e.changed() },
	}
	if err := e.regs.Add(pods.Informer(), podH); err != nil {
		cancel()
		return errors.Join(fmt.Errorf("watch: %w", err), e.regs.RemoveAll())
	}
	for _, inf := range []cache.SharedIndexInformer{nss.Informer(), nps.Informer(), sas.Informer()} {
		if err := e.regs.Add(inf, h); err != nil {
			cancel()
			return errors.Join(fmt.Errorf("watch: %w", err), e.regs.RemoveAll())
		}
	}
	e.cfg.Clients.Start()
	go func() {
		defer close(e.done)
		defer e.regs.RemoveAll() //nolint:errcheck // nothing to report when stopping
		if !cache.WaitForCacheSync(runCtx.Done(), e.regs.Synced()...) {
			return
		}
		// Calico's resources are served once the server has applied their
		// CRDs: the first sync waits for them a while (a normal start has
		// them in seconds), then goes on with Kubernetes policy alone
		// until they come (a server older than this agent).
		var calico atomic.Pointer[func() *CalicoObjects]
		ready := make(chan struct{})
		go func() {
			list, stop, err := e.watchCalico(runCtx, cs, dyn, h)
			if err != nil {
				return // stopped
			}
			defer stop()
			calico.Store(&list)
			close(ready)
			e.changed()
			<-runCtx.Done()
		}()
		select {
		case <-ready:
		case <-time.After(calicoWait):
			e.log.Error("Calico resources (projectcalico.org/v3) not served: enforcing Kubernetes NetworkPolicies only until they are", "waited", calicoWait)
		case <-runCtx.Done():
			return
		}
		hosts := &hostEndpoints{cfg: e.cfg, log: e.log, cs: cs, dyn: dyn}
		go func() {
			select {
			case <-ready:
				hosts.run(runCtx)
			case <-runCtx.Done():
			}
		}()
		e.loop(runCtx, &sources{pods: pods.Lister(), namespaces: nss.Lister(), netpols: nps.Lister(),
			serviceAccounts: sas.Lister(), calico: func() *CalicoObjects {
				if f := calico.Load(); f != nil {
					return (*f)()
				}
				return &CalicoObjects{}
			}})
	}()
	return nil
}

// watchCalico waits until the apiserver serves Calico's resources (the
// server applies their CRDs at start) and watches them; list returns
// their current objects.
func (e *Engine) watchCalico(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, h cache.ResourceEventHandler) (list func() *CalicoObjects, stop func(), err error) {
	waited := time.Now()
	err = kubeutil.Poll(ctx, time.Second, func(context.Context) (bool, error) {
		ok, err := CalicoServed(cs.Discovery())
		if !ok && time.Since(waited) > 30*time.Second {
			e.log.Warn("waiting for the Calico resources (projectcalico.org/v3) to be served", "error", err)
			waited = time.Now()
		}
		return ok, nil
	})
	if err != nil {
		return nil, nil, err
	}
	df := e.cfg.Clients.DynamicInformers()
	infs := make([]cache.SharedIndexInformer, len(CalicoResources))
	var regs kubeclients.Registrations
	for i, gvr := range CalicoResources {
		infs[i] = df.ForResource(gvr).Informer()
		if err := regs.Add(infs[i], h); err != nil {
			return nil, nil, errors.Join(fmt.Errorf("watch %s: %w", gvr.Resource, err), regs.RemoveAll())
		}
	}
	e.cfg.Clients.Start()
	if !cache.WaitForCacheSync(ctx.Done(), regs.Synced()...) {
		return nil, nil, errors.Join(ctx.Err(), regs.RemoveAll())
	}
	list = func() *CalicoObjects {
		var out CalicoObjects
		for i, inf := range infs {
			for _, o := range inf.GetStore().List() {
				if u, ok := o.(*unstructured.Unstructured); ok {
					out[i] = append(out[i], u)
				}
			}
		}
		return &out
	}
	return list, func() { _ = regs.RemoveAll() }, nil
}

func (e *Engine) kick() {
	select {
	case e.trigger <- struct{}{}:
	default:
	}
}

// loop programs the table after every change (coalesced), retrying a
// failed programming with back-off; the table keeps its last good state.
func (e *Engine) loop(ctx context.Context, src *sources) {
	e.kick()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.trigger:
		case <-retry.C:
		}
		err := e.sync(ctx, src)
		e.mu.Lock()
		e.err = err
		if err == nil {
			e.synced = true
		}
		e.mu.Unlock()
		if err != nil {
			e.log.Error("network policy programming failed; retrying", "error", err, "in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
	}
}

// Translate maps the API objects into the model; a policy that does not
// translate is reported and left out.
func Translate(pods []*corev1.Pod, nss []*corev1.Namespace, nps []*networkingv1.NetworkPolicy, bad func(error)) ([]*Policy, []*Endpoint) {
	nsLabels := map[string]map[string]string{}
	for _, ns := range nss {
		nsLabels[ns.Name] = ns.Labels
	}
	eps, _ := translatePods(pods, nsLabels)
	var pols []*Policy
	for _, np := range nps {
		p, err := FromNetworkPolicy(np)
		if err != nil {
			bad(err)
			continue
		}
		pols = append(pols, p)
	}
	return pols, eps
}

// translatePods maps the pods into endpoints; contested are the
// addresses two pods claimed (one lost: see newerClaim).
func translatePods(pods []*corev1.Pod, nsLabels map[string]map[string]string) (eps []*Endpoint, contested map[string]bool) {
	eps = make([]*Endpoint, 0, len(pods))
	type claim struct {
		ep  *Endpoint
		pod *corev1.Pod
	}
	byIP := map[string]claim{}
	contested = map[string]bool{}
	for _, pod := range pods {
		ep, ok := FromPod(pod, nsLabels[pod.Namespace])
		if !ok {
			continue
		}
		// An IP reused before the old pod's object is gone: the pod that
		// is not being deleted wins, else the newer one (then the larger
		// key), whatever the list order.
		ip := ep.IP.String()
		have, dup := byIP[ip]
		if dup {
			contested[ip] = true
			if !newerClaim(pod, have.pod) {
				continue
			}
		}
		byIP[ip] = claim{ep, pod}
	}
	for _, c := range byIP {
		eps = append(eps, c.ep)
	}
	return eps, contested
}

// newerClaim reports whether pod a wins an address over pod b.
func newerClaim(a, b *corev1.Pod) bool {
	if (a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil) {
		return a.DeletionTimestamp == nil
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name > b.Namespace+"/"+b.Name
}

// slimPod keeps only what the engine reads of a pod.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{}
	slim.Name, slim.Namespace, slim.UID, slim.Labels = pod.Name, pod.Namespace, pod.UID, pod.Labels
	slim.ResourceVersion, slim.DeletionTimestamp = pod.ResourceVersion, pod.DeletionTimestamp
	slim.CreationTimestamp = pod.CreationTimestamp
	slim.Spec.NodeName, slim.Spec.HostNetwork = pod.Spec.NodeName, pod.Spec.HostNetwork
	slim.Spec.ServiceAccountName = pod.Spec.ServiceAccountName
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			var ports []corev1.ContainerPort
			for _, p := range c.Ports {
				if p.Name != "" {
					ports = append(ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
				}
			}
			if len(ports) > 0 {
				slim.Spec.Containers = append(slim.Spec.Containers, corev1.Container{Name: c.Name, Ports: ports})
			}
		}
	}
	slim.Status.Phase, slim.Status.PodIP, slim.Status.PodIPs = pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs
	return slim, nil
}

// Ready waits for the first programming (at once when not enforcing).
func (e *Engine) Ready(ctx context.Context) error {
	if e.nft == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		e.mu.Lock()
		synced, err := e.synced, e.err
		e.mu.Unlock()
		if synced {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("network policy not programmed yet (last error: %v): %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// LastError is the last programming failure (nil after a success). A
// failure is retried with back-off and is no reason to stop the node (no
// Healthy): the table keeps its last good state meanwhile.
func (e *Engine) LastError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Stop ends the watch. The table stays: pods keep their protection while
// the agent restarts, and the next start replaces it atomically.
func (e *Engine) Stop(context.Context) error {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
	return nil
}
