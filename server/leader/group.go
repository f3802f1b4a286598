// Package leader runs the server controllers that must have one instance
// in the cluster (the LoadBalancer IP allocator, the CSR approver, the
// add-on deployer, ...) on one server at a time: the servers elect a
// leader with a coordination.k8s.io Lease (client-go leaderelection), the
// leader starts the controllers, and stops them when it loses the Lease.
//
// Each term of leadership runs a fresh set of components (Config.New), so
// no component has to support being started again after a stop.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/kubeclients"
)

// Lease timing, the defaults of kube-controller-manager and
// kube-scheduler: the iks controllers fail over together with theirs
// (within LeaseDuration+RetryPeriod, about 17s, of a leader's crash),
// and a renewal may take up to RenewDeadline before the leader gives
// up, which a loaded 2-core server with etcd fsyncs needs. A server that
// stops gracefully releases the Lease: another takes over within
// RetryPeriod.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// termStopTimeout bounds the stop of a term's components.
const termStopTimeout = 20 * time.Second

// Config of a Group.
type Config struct {
	// Clients reach the apiserver holding the Lease.
	Clients *kubeclients.Clients
	// Namespace and Name of the Lease ("kube-system", "iks-controllers").
	Namespace, Name string
	// Identity of this candidate: the server's node name.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod default to the
	// Default* values.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// New returns the components of one term, in start order. It is
	// called once by Init (whose components serve the first term) and
	// again for every later term.
	New func() ([]component.Component, error)
}

// Group is the component that elects and runs the leader's components.
type Group struct {
	cfg  Config
	log  *slog.Logger // with component=<Lease name>
	base *slog.Logger // for the components' manager, which names each

	first     chan struct{} // closed when a leader is known (or the first term failed)
	firstOnce sync.Once
	firstErr  error

	mu     sync.Mutex
	next   []component.Component // the initialised set for the next term
	term   *component.Manager    // the running term's components
	cancel context.CancelFunc    // ends the election loop
	done   chan struct{}         // closed when the loop returned
}

// New returns the group.
func New(cfg Config, log *slog.Logger) *Group {
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	return &Group{cfg: cfg, log: log.With("component", cfg.Name), base: log, first: make(chan struct{})}
}

// Name implements component.Component.
func (g *Group) Name() string { return g.cfg.Name }

// Init checks the configuration and initialises the first term's
// components, so a bad setting fails the server's start.
func (g *Group) Init(ctx context.Context) error {
	c := g.cfg
	switch {
	case c.Clients == nil || c.New == nil:
		return fmt.Errorf("leader group %q: Clients and New must be set", c.Name)
	case c.Namespace == "" || c.Name == "":
		return fmt.Errorf("leader group: Lease namespace %q and name %q must both be set", c.Namespace, c.Name)
	case c.Identity == "":
		return fmt.Errorf("leader group %s: no identity: set the server's node name", c.Name)
	case c.LeaseDuration <= c.RenewDeadline || c.RenewDeadline <= c.RetryPeriod:
		return fmt.Errorf("leader group %s: lease %s, renew deadline %s, retry %s: want lease > renew deadline > retry",
			c.Name, c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
	}
	comps, err := g.initSet(ctx)
	if err != nil {
		return err
	}
	g.next = comps
	return nil
}

// initSet builds and initialises one term's components.
func (g *Group) initSet(ctx context.Context) ([]component.Component, error) {
	comps, err := g.cfg.New()
	if err != nil {
		return nil, fmt.Errorf("%s: build the leader's components: %w", g.cfg.Name, err)
	}
	if err := component.NewManager(g.base, comps...).Init(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", g.cfg.Name, err)
	}
	return comps, nil
}

// Start joins the election and returns once a leader is known: this
// server, with its components started (their start error is returned),
// or another server.
func (g *Group) Start(ctx context.Context) error {
	cs, err := g.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: g.cfg.Namespace, Name: g.cfg.Name},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: g.cfg.Identity},
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	g.mu.Lock()
	g.cancel, g.done = cancel, done
	g.mu.Unlock()
	go func() {
		defer close(done)
		g.loop(runCtx, lock)
	}()
	select {
	case <-g.first:
		return g.firstErr
	case <-ctx.Done():
		return fmt.Errorf("%s: no leader elected (Lease %s/%s): %w", g.cfg.Name, g.cfg.Namespace, g.cfg.Name, context.Cause(ctx))
	}
}

// known records that a leader is known; err is the first term's failure.
func (g *Group) known(err error) {
	g.firstOnce.Do(func() {
		g.firstErr = err
		close(g.first)
	})
}

// Healthy reports the running term's components.
func (g *Group) Healthy() error {
	g.mu.Lock()
	m := g.term
	g.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Healthy()
}

// Stop stops this server's components first and then releases the Lease,
// so that the next leader never overlaps with them.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	cancel, done := g.cancel, g.done
	g.mu.Unlock()
	if cancel == nil {
		return nil
	}
	err := g.stopTerm(ctx)
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("%s: election loop did not end: %w", g.cfg.Name, ctx.Err()))
	}
	return err
}

// stopTerm stops the running term's components, once.
func (g *Group) stopTerm(ctx context.Context) error {
	g.mu.Lock()
	m := g.term
	g.term = nil
	g.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Stop(ctx)
}
