// Package blockipam is the agent side of block IPAM: the node claims
// blocks of the cluster's pod range as IPAMBlock objects
// (network.iks.io/v1) and hands them to the node-local allocator
// (agent/ipam) from which the CNI plugin gives pods their addresses.
//
// Creating an IPAMBlock is the claim: its name is derived from the CIDR,
// so two nodes racing for the same block cannot both succeed; the loser
// gets AlreadyExists and tries the next block. Blocks are owned by the
// node's Node object, so the garbage collector releases them when the
// Node is deleted. On restart the node keeps the blocks it has (listed by
// spec.node, plus every block its local store still uses), so they are
// the same across agent and server restarts. When the CNI plugin finds
// the node's blocks full it asks this agent, over a unix socket, for
// another; block usage is reported in each block's status.
package blockipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iks-dev/iks/agent/ipam"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/netapi"
)

// DefaultInterval is how often blocks are re-checked and usage reported.
const DefaultInterval = 5 * time.Second

// Config of the block manager.
type Config struct {
	NodeName string
	// Kubeconfig is the kubelet's (identity system:node:<name>).
	Kubeconfig string
	// StoreDir is the node-local allocator's directory.
	StoreDir string
	// Socket is where the CNI plugin asks for more blocks.
	Socket string
	// CacheFile keeps the last ConfigMap read, for starts while the
	// server is unreachable.
	CacheFile string
	// ClusterCIDR and ServiceCIDR, when valid, are the agent's flags: they
	// must match the server's.
	ClusterCIDR, ServiceCIDR netip.Prefix
	// ClusterDomain, when set, is the agent's --cluster-domain: it must
	// match the server's (kubelet writes it into every pod's resolv.conf).
	ClusterDomain string
	// Interval defaults to DefaultInterval.
	Interval time.Duration
}

// Manager is the component.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	store *ipam.Store

	cs      kubernetes.Interface
	blocks  *netapi.BlockClient
	network netapi.ClusterNetwork

	growMu sync.Mutex // one claim at a time
	mu     sync.Mutex
	own    []netip.Prefix // the node's blocks, sorted
	uid    string         // the Node object's UID
	subs   []func()
	kick   chan struct{}
	ready  bool
	// reported is the status last written per block.
	reported map[netip.Prefix]netapi.IPAMBlockStatus

	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Manager {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Manager{cfg: cfg, log: log.With("component", "ipam"), kick: make(chan struct{}, 1)}
}

// Name implements component.Component.
func (m *Manager) Name() string { return "ipam" }

// Init opens the node-local store.
func (m *Manager) Init(context.Context) error {
	s, err := ipam.Open(m.cfg.StoreDir)
	if err != nil {
		return err
	}
	m.store = s
	return nil
}

// Start listens on the socket; requests wait until the manager is ready.
func (m *Manager) Start(context.Context) error {
	l, err := ipam.ListenSocket(m.cfg.Socket)
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	m.srv = &http.Server{Handler: ipam.BlockHandler(m.grow), ReadHeaderTimeout: 5 * time.Second}
	m.wg.Go(func() {
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("agent socket failed", "socket", m.cfg.Socket, "err", err)
		}
	})
	return nil
}

// Ready reads the address plan, finds or claims the node's blocks, feeds
// them to the store and starts the loop that keeps them and reports usage.
func (m *Manager) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// kubelet writes its kubeconfig and client certificate during TLS
	// bootstrap; until both are there (and readable) loading fails.
	var rc *rest.Config
	var last error
	err := kubeutil.Poll(ctx, 200*time.Millisecond, func(context.Context) (bool, error) {
		rc, last = kubeutil.RESTConfig(m.cfg.Kubeconfig)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the node's credentials (kubelet TLS bootstrap): %w (last: %v)", err, last)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("ipam: client: %w", err)
	}
	bc, err := netapi.NewBlockClient(rc)
	if err != nil {
		return err
	}
	m.cs, m.blocks = cs, bc
	if m.network, err = m.loadClusterNetwork(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	var lastWarn time.Time
	var lastMsg string
	// A short interval: at start the first attempts fail only until kubelet
	// has registered the Node that owns the blocks, a fraction of a second.
	err = kubeutil.Poll(ctx, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := m.reconcile(ctx, true)
		if err == nil {
			return true, nil
		}
		if msg := err.Error(); msg != lastMsg || time.Since(lastWarn) > 5*time.Second {
			m.log.Warn("cannot set up this node's address blocks yet; retrying", "err", err)
			lastMsg, lastWarn = msg, time.Now()
		}
		// A restart while the server is away: go on with the blocks the
		// node had; the loop checks them with the API once it answers.
		return time.Since(t0) > cacheAfter && m.useStoredBlocks(), nil
	})
	if err != nil {
		return fmt.Errorf("node %s has no address block of %s: %w", m.cfg.NodeName, m.network.PodCIDR, err)
	}
	m.report(ctx)
	m.mu.Lock()
	m.ready = true
	own := slices.Clone(m.own)
	m.mu.Unlock()
	m.log.Info("address blocks ready", "blocks", fmt.Sprint(own), "pod-range", m.network.PodCIDR.String(),
		"block-size", netapi.FormatSize(m.network.BlockSize))
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = stop
	m.wg.Go(func() { m.loop(runCtx) })
	return nil
}

// useStoredBlocks adopts the store's block set, if it has one that fits
// the address plan.
func (m *Manager) useStoredBlocks() bool {
	stored, err := m.store.Blocks()
	if err != nil {
		return false
	}
	stored = slices.DeleteFunc(stored, func(p netip.Prefix) bool { return !m.fits(p) })
	if len(stored) == 0 || m.setOwn(stored) != nil {
		return false
	}
	m.log.Warn("server unreachable: using this node's blocks from its last run until the API answers", "blocks", fmt.Sprint(stored))
	return true
}

// loop re-checks the blocks and reports usage every interval and on kicks.
func (m *Manager) loop(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		// API errors are transient here (a server restart): the node keeps
		// its blocks and tries again; they are not fatal to the agent.
		if err := m.reconcile(ctx, false); err != nil && ctx.Err() == nil {
			m.log.Warn("address block check failed; retrying", "err", err)
		}
		m.report(ctx)
	}
}

// Network is the cluster's address plan; valid once Ready.
func (m *Manager) Network() netapi.ClusterNetwork { return m.network }

// Blocks returns the node's blocks, lowest first.
func (m *Manager) Blocks() []netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.own)
}

// OnChange registers fn, called (without locks held) whenever the node's
// block set changes.
func (m *Manager) OnChange(fn func()) {
	m.mu.Lock()
	m.subs = append(m.subs, fn)
	m.mu.Unlock()
}

// setOwn records the node's block set in memory and in the store and
// notifies subscribers when it changed.
func (m *Manager) setOwn(blocks []netip.Prefix) error {
	blocks = slices.Clone(blocks)
	slices.SortFunc(blocks, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	blocks = slices.Compact(blocks)
	if err := m.store.SetBlocks(blocks); err != nil {
		return err
	}
	m.mu.Lock()
	changed := !slices.Equal(m.own, blocks)
	m.own = blocks
	subs := slices.Clone(m.subs)
	m.mu.Unlock()
	if changed {
		for _, fn := range subs {
			fn()
		}
	}
	return nil
}

// Stop ends the loop and the socket; blocks stay claimed.
func (m *Manager) Stop(ctx context.Context) error {
	if m.cancel != nil {
		m.cancel()
	}
	var err error
	if m.srv != nil {
		err = m.srv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("ipam: stop: %w", ctx.Err())
	}
	return err
}
