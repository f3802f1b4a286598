package routing

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// Peer types in PeerStatus.Type.
const (
	PeerTypeMesh     = "mesh"
	PeerTypeExternal = "external"
)

// PeerStatus is one BGP session.
type PeerStatus struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
	// Type is PeerTypeMesh (another node) or PeerTypeExternal (a BGPPeer).
	Type string `json:"type"`
	ASN  uint32 `json:"asn"`
	// State is the BGP FSM state in lower case: "idle", "connect",
	// "active", "opensent", "openconfirm" or "established".
	State string `json:"state"`
	// Uptime is how long the session has been established (0 otherwise).
	Uptime time.Duration `json:"uptime"`
	// Received and Accepted count the IPv4 unicast routes the peer sent
	// and those the import policy kept.
	Received uint64 `json:"received"`
	Accepted uint64 `json:"accepted"`
	// GracefulRestart tells whether both sides negotiated it; Restarting
	// that the peer is restarting now (its routes are kept, stale).
	GracefulRestart bool `json:"gracefulRestart"`
	Restarting      bool `json:"restarting"`
	// LastError is the last NOTIFICATION sent or received, or session
	// error, with its time.
	LastError string `json:"lastError,omitempty"`
}

// RouteStatus is one learned block.
type RouteStatus struct {
	Dst     netip.Prefix `json:"dst"`
	NextHop netip.Addr   `json:"nextHop,omitzero"` // the advertising node
	Gateway netip.Addr   `json:"gateway,omitzero"` // the kernel route's gateway
	Device  string       `json:"device,omitempty"` // the tunnel device when tunnelled, else "uplink"
	Stale   bool         `json:"stale,omitempty"`  // kept while its node restarts
	Skipped string       `json:"skipped,omitempty"`
}

// Status is what `iks net status` shows.
type Status struct {
	Node   string     `json:"node"`
	NodeIP netip.Addr `json:"nodeIP"`
	ASN    uint32     `json:"asn"`
	// Encapsulation is the tunnel in use (TunnelIPIP, TunnelVXLAN or
	// TunnelNone); EncapMode is CrossSubnet, Always or Never.
	Encapsulation string `json:"encapsulation"`
	EncapMode     string `json:"encapMode"`
	// EncapReason says why this tunnel was chosen.
	EncapReason string `json:"encapReason,omitempty"`
	// GracefulRestartTime is 0 when graceful restart is off.
	GracefulRestartTime time.Duration `json:"gracefulRestartTime"`
	Peers               []PeerStatus  `json:"peers"`
	Routes              []RouteStatus `json:"routes"`
	Err                 string        `json:"error,omitempty"` // the last reconcile error
	// Zone and Sides place the node in the IKS network model (filled by
	// the agent, which owns the topology).
	Zone  string       `json:"zone,omitempty"`
	Sides []SideStatus `json:"sides,omitempty"`
}

// SideStatus is one side (private, public) of the node.
type SideStatus struct {
	Side    string       `json:"side"`
	Address netip.Prefix `json:"address"` // IP with its interface prefix length
	VLAN    string       `json:"vlan"`
}

// Status returns the sessions and the learned routes.
func (r *Router) Status(ctx context.Context) (Status, error) {
	st := Status{Node: r.cfg.NodeName, NodeIP: r.cfg.NodeIP, ASN: r.cfg.ASN, Encapsulation: r.tunnel,
		EncapMode: r.cfg.Encap, EncapReason: r.tunnelReason, GracefulRestartTime: r.cfg.GracefulRestartTime}
	if r.bgp == nil {
		return st, fmt.Errorf("routing: the BGP speaker is not running; start the agent first")
	}
	r.mu.Lock()
	peers := map[string]Peer{}
	for ip, p := range r.peers {
		peers[ip.String()] = p
	}
	errs := maps.Clone(r.peerErr)
	accepted := maps.Clone(r.accepted)
	for _, k := range r.routes {
		rs := RouteStatus{Dst: k.Dst, NextHop: k.NextHop, Gateway: r.gateway(k), Device: "uplink", Stale: k.Stale}
		if k.Tunnel {
			rs.Device = r.tunnelDevice()
		}
		st.Routes = append(st.Routes, rs)
	}
	for p, why := range r.skipped {
		st.Routes = append(st.Routes, RouteStatus{Dst: p, Skipped: why})
	}
	if r.lastErr != nil {
		st.Err = r.lastErr.Error()
	}
	r.mu.Unlock()
	slices.SortFunc(st.Routes, func(a, b RouteStatus) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })

	err := r.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		ps := PeerStatus{Type: PeerTypeMesh}
		if p.State != nil {
			ps.IP, _ = netip.ParseAddr(p.State.NeighborAddress)
			ps.State = sessionState(p.State.SessionState)
			ps.ASN = p.State.PeerAsn
		}
		if cfg, ok := peers[ps.IP.String()]; ok {
			ps.Name = cfg.Name
			if cfg.External {
				ps.Type = PeerTypeExternal
			}
			ps.ASN = r.peerASN(cfg)
		}
		if ps.State == "established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			ps.Uptime = time.Since(p.Timers.State.Uptime.AsTime()).Round(time.Second)
		}
		for _, a := range p.AfiSafis {
			if a.State != nil {
				ps.Received += a.State.Received
			}
		}
		// gobgp's own accepted counter ignores the global import policy.
		ps.Accepted = accepted[ps.IP.String()]
		if gr := p.GracefulRestart; gr != nil {
			ps.GracefulRestart = gr.Enabled && gr.PeerRestartTime > 0
			ps.Restarting = gr.PeerRestarting
		}
		ps.LastError = errs[ps.IP.String()]
		st.Peers = append(st.Peers, ps)
	})
	if err != nil {
		return st, fmt.Errorf("routing: list BGP peers: %w", err)
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return a.IP.Compare(b.IP) })
	return st, nil
}

func sessionState(s api.PeerState_SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PeerState_"))
}

// allPeersEstablished reports whether every configured mesh peer has a
// session up and, with graceful restart, has sent its End-of-RIB (true
// when there are none). External peers never count: nothing they send is
// routed.
func (r *Router) allPeersEstablished(ctx context.Context) bool {
	all := true
	err := r.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			all = false
			return
		}
		if ip, err := netip.ParseAddr(p.State.NeighborAddress); err == nil && r.isExternal(ip) {
			return
		}
		if p.State.SessionState != api.PeerState_ESTABLISHED {
			all = false
			return
		}
		for _, a := range p.AfiSafis {
			if g := a.MpGracefulRestart; g != nil && g.State != nil && g.State.Received && !g.State.EndOfRibReceived {
				all = false
			}
		}
	})
	return err == nil && all
}
