package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the routing agent owns ("proto 81" in
// `ip route`); the CNI plugin's pod routes use 80.
const RouteProtocol netlink.RouteProtocol = 81

// kernelRoute is one route the agent wants in the main table.
type kernelRoute struct {
	Dst     netip.Prefix
	NextHop netip.Addr // the peer node's IP (BGP next hop)
	Tunnel  bool       // through the tunnel device instead of natively
	Stale   bool       // its sender is restarting (graceful restart)
}

// Gateway is the route's gateway: the next hop itself for a native route,
// the block's tunnel address for a tunnelled one.
func (k kernelRoute) Gateway() netip.Addr {
	if k.Tunnel {
		return TunnelAddr(k.Dst)
	}
	return k.NextHop
}

// plan turns learned paths into kernel routes, skipping (and returning
// the reasons for) any path that would hijack the node's own addresses.
func plan(cfg Config, learned []learnedPath, local []netip.Prefix) (map[netip.Prefix]kernelRoute, map[netip.Prefix]string) {
	routes := map[netip.Prefix]kernelRoute{}
	skipped := map[netip.Prefix]string{}
	for _, l := range learned {
		reason := ""
		switch {
		case !l.Prefix.Addr().Is4():
			reason = "not IPv4"
		case l.Prefix.Contains(cfg.NodeIP):
			reason = "contains the node IP " + cfg.NodeIP.String()
		case l.Prefix.Overlaps(cfg.NodeSubnet):
			reason = "overlaps the node subnet " + cfg.NodeSubnet.String()
		case l.NextHop == cfg.NodeIP:
			reason = "next hop is this node"
		}
		for _, b := range local {
			if reason == "" && l.Prefix.Overlaps(b) {
				reason = "overlaps local block " + b.String()
			}
		}
		if reason != "" {
			skipped[l.Prefix] = reason
			continue
		}
		tunnel := cfg.Encap == EncapAlways || (cfg.Encap == EncapCrossSubnet && !cfg.NodeSubnet.Contains(l.NextHop))
		routes[l.Prefix] = kernelRoute{Dst: l.Prefix, NextHop: l.NextHop, Tunnel: tunnel, Stale: l.Stale}
	}
	return routes, skipped
}

// gateway is the kernel route's gateway: the peer's node IP when native
// or through IP-in-IP (the outer destination, as Calico's tunl0 routes),
// the block's tunnel address through VXLAN.
func (r *Router) gateway(k kernelRoute) netip.Addr {
	if k.Tunnel && r.tunnel == TunnelIPIP {
		return k.NextHop
	}
	return k.Gateway()
}

// toNetlink builds the netlink route of k.
func (r *Router) toNetlink(k kernelRoute) *netlink.Route {
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: k.Dst.Addr().AsSlice(), Mask: net.CIDRMask(k.Dst.Bits(), 32)},
		Gw:       k.Gateway().AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
	switch {
	case k.Tunnel:
		nr.LinkIndex = r.tunIndex
		nr.Flags = int(netlink.FLAG_ONLINK)
		nr.Gw = r.gateway(k).AsSlice()
	case r.cfg.NodeSubnet.Contains(k.NextHop):
		nr.LinkIndex = r.uplinkIndex
	}
	return nr
}

// ownedRoutes lists the proto-81 IPv4 routes of the main table.
func ownedRoutes() (map[netip.Prefix]netlink.Route, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("routing: list proto %d routes: %w", RouteProtocol, err)
	}
	out := map[netip.Prefix]netlink.Route{}
	for _, rt := range rs {
		if rt.Dst == nil {
			continue
		}
		if p, ok := prefixOf(rt.Dst); ok {
			out[p] = rt
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP.To4())
	ones, bits := n.Mask.Size()
	if !ok || bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func sameRoute(have netlink.Route, want *netlink.Route) bool {
	return have.Gw.Equal(want.Gw) && have.LinkIndex == want.LinkIndex &&
		(have.Flags&int(netlink.FLAG_ONLINK)) == (want.Flags&int(netlink.FLAG_ONLINK))
}

// applyRoutes makes the proto-81 routes match want. Routes it did not
// install in this run are removed only when prune is set, so a restart
// keeps forwarding while sessions come back.
func (r *Router) applyRoutes(want map[netip.Prefix]kernelRoute, prune bool) error {
	have, err := ownedRoutes()
	if err != nil {
		return err
	}
	var errs []error
	for p, rt := range have {
		if _, ok := want[p]; ok || (!prune && !r.installed[p]) {
			continue
		}
		if err := netlink.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("routing: remove route %s: %w", p, err))
			continue
		}
		delete(r.installed, p)
		r.log.Info("removed route", "dst", p)
	}
	for p, k := range want {
		nr := r.toNetlink(k)
		if cur, ok := have[p]; ok && sameRoute(cur, nr) {
			r.installed[p] = true
			continue
		}
		if err := netlink.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("routing: install route %s via %s: %w", p, r.gateway(k), err))
			continue
		}
		r.installed[p] = true
		r.log.Info("installed route", "dst", p, "via", r.gateway(k), "nexthop", k.NextHop, "tunnel", k.Tunnel)
	}
	return errors.Join(errs...)
}

// applyNeighbours programs the static FDB and neighbour entries of the
// VXLAN device for the tunnelled routes and removes the ones no longer
// needed.
func (r *Router) applyNeighbours(want map[netip.Prefix]kernelRoute) error {
	fdb := map[string]netip.Addr{} // peer VTEP MAC -> peer node IP
	arp := map[netip.Addr]string{} // tunnel gateway -> peer VTEP MAC
	for _, k := range want {
		if !k.Tunnel {
			continue
		}
		mac := VTEPMAC(k.NextHop).String()
		fdb[mac] = k.NextHop
		arp[k.Gateway()] = mac
	}
	var errs []error
	if bridge, err := netlink.NeighList(r.tunIndex, unix.AF_BRIDGE); err != nil {
		errs = append(errs, fmt.Errorf("routing: list FDB of %s: %w", VXLANDevice, err))
	} else {
		for _, n := range bridge {
			mac := n.HardwareAddr.String()
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			if !strings.HasPrefix(mac, "02:1b:") || fdb[mac] == ip {
				continue
			}
			if err := netlink.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("routing: remove FDB entry %s: %w", mac, err))
			}
		}
	}
	if v4, err := netlink.NeighList(r.tunIndex, netlink.FAMILY_V4); err != nil {
		errs = append(errs, fmt.Errorf("routing: list neighbours of %s: %w", VXLANDevice, err))
	} else {
		for _, n := range v4 {
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			if mac, ok := arp[ip]; ok && mac == n.HardwareAddr.String() {
				continue
			}
			if err := netlink.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("routing: remove neighbour %s: %w", ip, err))
			}
		}
	}
	for mac, ip := range fdb {
		hw, _ := net.ParseMAC(mac)
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: r.tunIndex, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: ip.AsSlice(), HardwareAddr: hw,
		}); err != nil {
			errs = append(errs, fmt.Errorf("routing: add FDB entry %s -> %s: %w", mac, ip, err))
		}
	}
	for ip, mac := range arp {
		hw, _ := net.ParseMAC(mac)
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: r.tunIndex, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: ip.AsSlice(), HardwareAddr: hw,
		}); err != nil {
			errs = append(errs, fmt.Errorf("routing: add neighbour %s -> %s: %w", ip, mac, err))
		}
	}
	return errors.Join(errs...)
}
