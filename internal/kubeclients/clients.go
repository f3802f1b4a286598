// Package kubeclients is a process's one set of API clients and shared
// informer factories, handed to every component that talks to the API
// server (as k3s and k0s pass a controller context): one watch per
// resource type per process, however many components look at Nodes.
//
// The clients are built lazily from a kubeconfig file that may not exist
// when the components are constructed (the server writes its admin
// kubeconfig, the kubelet its own during TLS bootstrap): Wait blocks until
// it loads. Informers run until Shutdown, called once by the process when
// every component has stopped; a component removes its own event
// handlers when it stops.
package kubeclients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// Resync is the shared informers' resync period.
const Resync = 10 * time.Minute

// Clients are the shared clients and informer factories of one process.
type Clients struct {
	kubeconfig string

	mu      sync.Mutex
	ready   bool
	cfg     *rest.Config
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	inf     informers.SharedInformerFactory
	dynInf  dynamicinformer.DynamicSharedInformerFactory
	stop    chan struct{}
	stopped bool
}

// New returns clients for kubeconfig; nothing is loaded yet.
func New(kubeconfig string) *Clients {
	return &Clients{kubeconfig: kubeconfig, stop: make(chan struct{})}
}

// ForTest returns clients over given (fake) clients.
func ForTest(kube kubernetes.Interface, dyn dynamic.Interface) *Clients {
	c := New("")
	c.set(&rest.Config{}, kube, dyn)
	return c
}

func (c *Clients) set(cfg *rest.Config, kube kubernetes.Interface, dyn dynamic.Interface) {
	c.cfg, c.kube, c.dyn = cfg, kube, dyn
	c.inf = informers.NewSharedInformerFactory(kube, Resync)
	if dyn != nil {
		c.dynInf = dynamicinformer.NewDynamicSharedInformerFactory(dyn, Resync)
	}
	c.ready = true
}

// Wait loads the kubeconfig, waiting for it (and the certificate files it
// names) to exist, and returns the typed client.
func (c *Clients) Wait(ctx context.Context) (kubernetes.Interface, error) {
	c.mu.Lock()
	if c.ready {
		defer c.mu.Unlock()
		return c.kube, nil
	}
	c.mu.Unlock()
	if _, err := kubeutil.WaitClientset(ctx, c.kubeconfig); err != nil {
		return nil, err
	}
	cfg, err := kubeutil.RESTConfig(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", c.kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %s: %w", c.kubeconfig, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		c.set(cfg, kube, dyn)
	}
	return c.kube, nil
}

// Kubeconfig is the file the clients load.
func (c *Clients) Kubeconfig() string { return c.kubeconfig }

// Config returns the REST config (after Wait).
func (c *Clients) Config() *rest.Config { c.mu.Lock(); defer c.mu.Unlock(); return c.cfg }

// Dynamic returns the dynamic client (after Wait).
func (c *Clients) Dynamic() dynamic.Interface { c.mu.Lock(); defer c.mu.Unlock(); return c.dyn }

// Informers returns the shared typed informer factory (after Wait).
func (c *Clients) Informers() informers.SharedInformerFactory {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inf
}

// DynamicInformers returns the shared dynamic informer factory (after Wait).
func (c *Clients) DynamicInformers() dynamicinformer.DynamicSharedInformerFactory {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dynInf
}

// Start starts every informer requested so far and not yet running; call
// it after requesting informers. A no-op after Shutdown.
func (c *Clients) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || !c.ready {
		return
	}
	c.inf.Start(c.stop)
	if c.dynInf != nil {
		c.dynInf.Start(c.stop)
	}
}

// Shutdown stops every informer and waits for their goroutines; once.
func (c *Clients) Shutdown() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	close(c.stop)
	inf, dynInf := c.inf, c.dynInf
	c.mu.Unlock()
	if inf != nil {
		inf.Shutdown()
	}
	if dynInf != nil {
		dynInf.Shutdown()
	}
}

// Registrations are one component's event handlers on shared informers,
// removed together when the component stops: the informers keep running
// for the others.
type Registrations struct {
	mu   sync.Mutex
	regs []registration
}

type registration struct {
	inf cache.SharedInformer
	reg cache.ResourceEventHandlerRegistration
}

// Add registers h on inf.
func (r *Registrations) Add(inf cache.SharedInformer, h cache.ResourceEventHandler) error {
	return r.AddWithResync(inf, h, 0)
}

// AddWithResync registers h on inf, also called every resync period
// (0: the informer's own).
func (r *Registrations) AddWithResync(inf cache.SharedInformer, h cache.ResourceEventHandler, resync time.Duration) error {
	var reg cache.ResourceEventHandlerRegistration
	var err error
	if resync > 0 {
		reg, err = inf.AddEventHandlerWithResyncPeriod(h, resync)
	} else {
		reg, err = inf.AddEventHandler(h)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.regs = append(r.regs, registration{inf, reg})
	r.mu.Unlock()
	return nil
}

// Synced returns, per handler, whether it has seen its informer's
// initial list (for cache.WaitForCacheSync).
func (r *Registrations) Synced() []cache.InformerSynced {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]cache.InformerSynced, 0, len(r.regs))
	for _, g := range r.regs {
		out = append(out, g.reg.HasSynced)
	}
	return out
}

// RemoveAll removes every handler Add registered; idempotent.
func (r *Registrations) RemoveAll() error {
	r.mu.Lock()
	regs := r.regs
	r.regs = nil
	r.mu.Unlock()
	var errs []error
	for _, g := range regs {
		if err := g.inf.RemoveEventHandler(g.reg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
