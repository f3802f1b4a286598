package routing

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// PeerStatus is one BGP session.
type PeerStatus struct {
	Name string
	IP   netip.Addr
	// State is the BGP FSM state in lower case: "idle", "connect",
	// "active", "opensent", "openconfirm" or "established".
	State string
	// Uptime is how long the session has been established (0 otherwise).
	Uptime time.Duration
}

// RouteStatus is one learned block.
type RouteStatus struct {
	Dst     netip.Prefix
	NextHop netip.Addr // the advertising node
	Gateway netip.Addr // the kernel route's gateway
	Device  string     // VXLANDevice when tunnelled, else "uplink"
	Skipped string     // why it is not in the kernel; empty when installed
}

// Status is what `iks net status` shows.
type Status struct {
	Node          string
	NodeIP        netip.Addr
	ASN           uint32
	Encapsulation string
	Peers         []PeerStatus
	Routes        []RouteStatus
	Err           string // the last reconcile error
}

// Status returns the sessions and the learned routes.
func (r *Router) Status(ctx context.Context) (Status, error) {
	st := Status{Node: r.cfg.NodeName, NodeIP: r.cfg.NodeIP, ASN: r.cfg.ASN, Encapsulation: r.tunnel}
	if r.bgp == nil {
		return st, fmt.Errorf("routing: the BGP speaker is not running; start the agent first")
	}
	r.mu.Lock()
	names := map[string]string{}
	for ip, p := range r.peers {
		names[ip.String()] = p.Name
	}
	for _, k := range r.routes {
		rs := RouteStatus{Dst: k.Dst, NextHop: k.NextHop, Gateway: k.Gateway(), Device: "uplink"}
		if k.Tunnel {
			rs.Device = VXLANDevice
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
		ps := PeerStatus{}
		if p.State != nil {
			ps.IP, _ = netip.ParseAddr(p.State.NeighborAddress)
			ps.State = sessionState(p.State.SessionState)
		}
		ps.Name = names[ps.IP.String()]
		if ps.State == "established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			ps.Uptime = time.Since(p.Timers.State.Uptime.AsTime()).Round(time.Second)
		}
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

// allPeersEstablished reports whether every configured peer has a
// session up (true when there are none).
func (r *Router) allPeersEstablished(ctx context.Context) bool {
	all := true
	err := r.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil || p.State.SessionState != api.PeerState_ESTABLISHED {
			all = false
		}
	})
	return err == nil && all
}
