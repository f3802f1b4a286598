package vpnroute

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes vpnroute owns (the CNI plugin uses 80,
// pod routing 81).
const RouteProtocol netlink.RouteProtocol = 82

// nextHop is how this node reaches a gateway node: the kernel route it
// uses for that node's pod block (native, IP-in-IP or VXLAN alike).
type nextHop struct {
	Gw        net.IP
	LinkIndex int
	Onlink    bool
}

// hopTo resolves the next hop toward the gateway through the tunnel
// address of one of its blocks.
func hopTo(blockAddr netip.Addr) (nextHop, error) {
	rs, err := netlink.RouteGet(net.IP(blockAddr.AsSlice()))
	if err != nil {
		return nextHop{}, fmt.Errorf("route to %s: %w", blockAddr, err)
	}
	if len(rs) == 0 || rs[0].Gw == nil {
		return nextHop{}, fmt.Errorf("no gateway route to %s (the gateway node's pod block)", blockAddr)
	}
	r := rs[0]
	return nextHop{Gw: r.Gw, LinkIndex: r.LinkIndex, Onlink: true}, nil
}

// wantRoute is the desired main-table route of one remote prefix: via
// hop, or a blackhole when hop is nil.
func wantRoute(p netip.Prefix, hop *nextHop) *netlink.Route {
	r := &netlink.Route{Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
		Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	if hop == nil {
		r.Type = unix.RTN_BLACKHOLE
		return r
	}
	r.Gw, r.LinkIndex = hop.Gw, hop.LinkIndex
	if hop.Onlink {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r
}

// applyRoutes makes the proto-82 routes of the main table exactly want.
func applyRoutes(want map[netip.Prefix]*netlink.Route) error {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("vpnroute: list routes: %w", err)
	}
	var errs []error
	seen := map[netip.Prefix]bool{}
	for _, h := range have {
		p, ok := prefix(h.Dst)
		w, wanted := want[p]
		if ok && wanted && same(h, w) {
			seen[p] = true
			continue
		}
		if ok && wanted {
			// Replaced in place below: deleting it first would leave
			// the prefix without a route for a moment, and its packets
			// to the default route, in clear text.
			continue
		}
		h := h
		if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("vpnroute: delete route %s: %w", p, err))
		}
	}
	for p, w := range want {
		if seen[p] {
			continue
		}
		if err := netlink.RouteReplace(w); err != nil {
			errs = append(errs, fmt.Errorf("vpnroute: route %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func prefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}

func same(h netlink.Route, w *netlink.Route) bool {
	return h.Type == w.Type && h.Gw.Equal(w.Gw) && (w.Type == unix.RTN_BLACKHOLE || h.LinkIndex == w.LinkIndex)
}
