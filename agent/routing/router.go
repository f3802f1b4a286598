package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Router is the routing agent component.
type Router struct {
	cfg    Config
	cfgErr error
	log    *slog.Logger

	bgp          *server.BgpServer
	tunnel       string // TunnelVXLAN, TunnelIPIP or TunnelNone
	tunnelReason string
	uplinkIndex  int
	tunIndex     int // the tunnel device (VXLAN or IP-in-IP)
	startedAt    time.Time

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the loop goroutine (and Start before it runs).
	advertised map[netip.Prefix][]byte // block -> gobgp path UUID
	installed  map[netip.Prefix]bool   // routes installed in this run
	allUp      bool                    // every peer has been established once
	extSet     map[string]bool         // external peers in the policy neighbour set

	mu       sync.Mutex
	peers    map[netip.Addr]Peer
	routes   map[netip.Prefix]kernelRoute
	skipped  map[netip.Prefix]string
	peerErr  map[string]string // neighbour address -> last NOTIFICATION or error
	accepted map[string]uint64 // neighbour address -> paths in the table
	lastErr  error
	stopped  bool
}

// New returns the routing agent; the configuration is checked by Init.
func New(cfg Config, log *slog.Logger) *Router {
	cfg, err := cfg.withDefaults()
	return &Router{
		cfg:        cfg,
		cfgErr:     err,
		log:        log.With("component", "routing"),
		kick:       make(chan struct{}, 1),
		advertised: map[netip.Prefix][]byte{},
		installed:  map[netip.Prefix]bool{},
		extSet:     map[string]bool{},
		peers:      map[netip.Addr]Peer{},
		peerErr:    map[string]string{},
	}
}

// Name implements component.Component.
func (r *Router) Name() string { return "routing" }

// Init checks the configuration and finds the uplink holding the node IP.
func (r *Router) Init(context.Context) error {
	if r.cfgErr != nil {
		return r.cfgErr
	}
	uplink, err := uplinkFor(r.cfg.NodeIP)
	if err != nil {
		return err
	}
	r.uplinkIndex = uplink.Attrs().Index
	return nil
}

// Start chooses the encapsulation, starts the BGP speaker and the loop
// that keeps peers, advertised blocks and kernel routes in sync.
func (r *Router) Start(ctx context.Context) error {
	if r.uplinkIndex == 0 {
		if err := r.Init(ctx); err != nil {
			return err
		}
	}
	if err := r.setupTunnel(); err != nil {
		return err
	}
	r.startedAt = time.Now()
	r.bgp = newBGPServer(r.log, r.notePeerError)
	go r.bgp.Serve() // returns never; the server is idle after Stop
	if err := r.startBGP(ctx); err != nil {
		r.bgp.Stop()
		r.bgp = nil
		return err
	}
	if err := r.installPolicies(ctx); err != nil {
		r.bgp.Stop()
		r.bgp = nil
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	err := r.bgp.WatchEvent(loopCtx, &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST}}},
	}, func(*api.WatchEventResponse) { r.trigger() })
	if err != nil {
		cancel()
		r.bgp.Stop()
		r.bgp = nil
		return fmt.Errorf("routing: watch the BGP table: %w", err)
	}
	r.log.Info("BGP speaker running", "node", r.cfg.NodeName, "listen", netip.AddrPortFrom(r.cfg.NodeIP, uint16(r.cfg.Port)),
		"asn", r.cfg.ASN, "encap", r.cfg.Encap, "tunnel", r.tunnel, "graceful-restart", r.cfg.GracefulRestartTime)
	r.wg.Add(1)
	go r.loop(loopCtx)
	return nil
}

// setupTunnel picks the tunnel and creates its device: IP-in-IP where
// the kernel can create an ipip device, VXLAN otherwise.
func (r *Router) setupTunnel() error {
	if r.cfg.Encap == EncapNever {
		r.tunnel, r.tunnelReason = TunnelNone, "encapsulation mode Never"
		r.log.Info("encapsulation chosen", "tunnel", TunnelNone, "reason", r.tunnelReason)
		return nil
	}
	uplink, err := uplinkFor(r.cfg.NodeIP)
	if err != nil {
		return err
	}
	ipipErr := error(nil)
	if idx, err := ensureIPIP(r.cfg.NodeIP, uplink); err == nil {
		r.tunIndex, r.tunnel = idx, TunnelIPIP
		r.tunnelReason = "the kernel supports ipip"
		r.log.Info("encapsulation chosen", "tunnel", TunnelIPIP, "mode", r.cfg.Encap, "reason", r.tunnelReason,
			"device", IPIPDevice, "mtu", uplink.Attrs().MTU-ipipOverhead)
		return nil
	} else {
		ipipErr = err
	}
	idx, err := ensureVXLAN(r.cfg.NodeIP, uplink)
	if err != nil {
		return fmt.Errorf("%w (IP-in-IP was not possible either: %v)", err, ipipErr)
	}
	r.tunIndex, r.tunnel = idx, TunnelVXLAN
	r.tunnelReason = "IP-in-IP unavailable: " + ipipErr.Error()
	r.log.Info("encapsulation chosen", "tunnel", TunnelVXLAN, "mode", r.cfg.Encap, "reason", r.tunnelReason,
		"device", VXLANDevice, "vni", VXLANVNI, "port", VXLANPort, "mtu", uplink.Attrs().MTU-vxlanOverhead)
	return nil
}

// tunnelDevice is the name of the tunnel device in use.
func (r *Router) tunnelDevice() string {
	switch r.tunnel {
	case TunnelIPIP:
		return IPIPDevice
	case TunnelVXLAN:
		return VXLANDevice
	}
	return ""
}

// EncapsulationLabel is the node annotation value describing the
// encapsulation, e.g. "VXLAN CrossSubnet", "IPIP Always" or "None Never".
func (r *Router) EncapsulationLabel() string {
	name := map[string]string{TunnelIPIP: "IPIP", TunnelVXLAN: "VXLAN", TunnelNone: "None"}[r.tunnel]
	return name + " " + r.cfg.Encap
}

// Encapsulation reports the tunnel in use: "vxlan", "ipip" or "none".
func (r *Router) Encapsulation() string { return r.tunnel }

// Resync asks the loop to re-read blocks and peers and reprogram the
// kernel now, e.g. after the node's blocks changed.
func (r *Router) Resync() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Router) trigger() { r.Resync() }

func (r *Router) loop(ctx context.Context) {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.ResyncInterval)
	defer tick.Stop()
	full := true
	for {
		if full {
			r.syncAdvertised(ctx)
			r.syncPeers(ctx)
		}
		r.reconcile(ctx)
		full = false
		select {
		case <-ctx.Done():
			return
		case <-r.cfg.Peers.Changed():
			full = true
		case <-r.kick:
			full = true
		case <-tick.C:
			full = true
		}
	}
}

// reconcile programs the kernel from the current best paths.
func (r *Router) reconcile(ctx context.Context) {
	learned, err := r.learnedPaths(ctx)
	if err != nil {
		r.setErr(err)
		return
	}
	local := r.cfg.LocalBlocks()
	routes, skipped := plan(r.cfg, learned, local)
	for p, why := range skipped {
		r.mu.Lock()
		_, known := r.skipped[p]
		r.mu.Unlock()
		if !known {
			r.log.Warn("not installing learned route", "dst", p, "reason", why)
		}
	}
	if !r.allUp {
		r.allUp = r.allPeersEstablished(ctx)
	}
	prune := r.allUp || time.Since(r.startedAt) > r.cfg.StaleGrace
	var errs []error
	if r.tunnel != TunnelNone {
		var addr netip.Addr
		if len(local) > 0 {
			addr = TunnelAddr(local[0])
		}
		errs = append(errs, ensureTunnelAddr(r.tunIndex, addr))
	}
	if r.tunnel == TunnelVXLAN {
		errs = append(errs, r.applyNeighbours(routes))
	}
	errs = append(errs, r.applyRoutes(routes, prune))
	err = errors.Join(errs...)
	r.mu.Lock()
	r.routes, r.skipped = routes, skipped
	r.mu.Unlock()
	r.setErr(err)
}

func (r *Router) setErr(err error) {
	r.mu.Lock()
	changed := (err == nil) != (r.lastErr == nil)
	r.lastErr = err
	r.mu.Unlock()
	if err != nil {
		r.log.Warn("routing reconcile failed; retrying on the next event or resync", "err", err)
	} else if changed {
		r.log.Info("routing reconcile succeeded again")
	}
}

// Healthy implements component.Healther: the last reconcile's error.
func (r *Router) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Stop ends the loop and closes every BGP session. With graceful restart
// the sessions are reset with a Cease/Administrative Reset, which RFC 8538
// peers treat as a restart: they keep this node's routes (stale) until it
// is back or the restart time passes. Without it a Cease makes them
// withdraw the routes at once. Kernel routes stay either way: pods keep
// forwarding and the next start reconciles them.
func (r *Router) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped || r.bgp == nil {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		if r.cfg.GracefulRestartTime > 0 {
			r.resetForRestart(ctx)
		}
		r.bgp.Stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("routing: stop BGP speaker: %w", ctx.Err())
	}
}
