package lb

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/iks-dev/iks/internal/lbpool"
)

// SetPlacement records where each subnet lives (lbpool.Place over the
// current nodes); allocation then uses only subnets with attached nodes.
func (a *Allocator) SetPlacement(ps []lbpool.Placement) {
	a.placed = make(map[netip.Prefix]lbpool.Placement, len(ps))
	for _, p := range ps {
		a.placed[p.Subnet.Prefix] = p
	}
}

// Placement returns the placement of the subnet holding ip.
func (a *Allocator) Placement(ip netip.Addr) (lbpool.Placement, bool) {
	s, ok := lbpool.Find(a.subnets, ip)
	if !ok || a.placed == nil {
		return lbpool.Placement{}, false
	}
	p, ok := a.placed[s.Prefix]
	return p, ok
}

func (a *Allocator) reachable(s lbpool.Subnet) bool {
	if a.placed == nil {
		return true
	}
	return a.placed[s.Prefix].Reachable()
}

func (a *Allocator) inZone(s lbpool.Subnet, zone string) bool {
	if a.placed == nil {
		return s.Zone == "" || s.Zone == zone
	}
	p, ok := a.placed[s.Prefix]
	if !ok {
		return s.Zone == zone
	}
	return p.InZone(zone)
}

// reachableCount counts the reachable subnets of kind (in zone, when set).
func (a *Allocator) reachableCount(kind lbpool.Kind, zone string) int {
	n := 0
	for _, s := range a.subnets {
		if s.Kind == kind && (zone == "" || a.inZone(s, zone)) && a.reachable(s) {
			n++
		}
	}
	return n
}

// defaultKind is the pool of a service without the ip-type annotation:
// public when a reachable public subnet exists, else private when a
// reachable private one does, else public (whose error then explains).
func (a *Allocator) defaultKind(zone string) lbpool.Kind {
	if a.reachableCount(lbpool.Public, zone) == 0 && a.reachableCount(lbpool.Private, zone) > 0 {
		return lbpool.Private
	}
	return lbpool.Public
}

// zonesOf lists the zones the subnets of kind serve.
func (a *Allocator) zonesOf(kind lbpool.Kind) string {
	var zones []string
	for _, s := range a.subnets {
		if s.Kind != kind {
			continue
		}
		zs := []string{s.Zone}
		if s.Zone == "" {
			zs = a.placed[s.Prefix].Zones
		}
		for _, z := range zs {
			if z != "" && !slices.Contains(zones, z) {
				zones = append(zones, z)
			}
		}
	}
	if len(zones) == 0 {
		return "no zone yet (no node is attached to them)"
	}
	slices.Sort(zones)
	return strings.Join(zones, ", ")
}

func sideFlag(k lbpool.Kind) string {
	if k == lbpool.Public {
		return "`iks agent --public-ip` / --public-interface"
	}
	return "--node-ip"
}

// placementKey is the work-queue key that recomputes the placements.
const placementKey = "\x00placement"

// ReasonNoEligibleNode is the Warning event of a Service whose IP no node
// can hold.
const ReasonNoEligibleNode = "NoNodeForLoadBalancerIP"

// replace recomputes where each subnet lives from the current nodes and
// reports whether anything changed.
func (c *Controller) replace() bool {
	nodes, err := c.nodes.List(everything())
	if err != nil {
		return false
	}
	ps := lbpool.Place(c.subnets, nodes)
	if c.placements != nil && reflect.DeepEqual(ps, c.placements) && !c.forcePlace {
		return false
	}
	for _, p := range ps {
		if !p.Reachable() {
			c.log.Warn("no node is attached to a portable subnet: its IPs are not handed out", "subnet", p.Subnet.String(),
				"type", p.Subnet.Kind, "fix", "start a node whose "+string(p.Subnet.Kind)+" interface is on that network, or name its VLAN")
		} else {
			c.log.Info("portable subnet placed", "subnet", p.Subnet.String(), "type", p.Subnet.Kind, "nodes", p.Nodes, "zones", p.Zones, "vlans", p.VLANs)
		}
	}
	c.placements, c.forcePlace = ps, false
	c.alloc.SetPlacement(ps)
	return true
}

// managedServices lists the Services the controller allocates for.
func (c *Controller) managedServices() []*corev1.Service {
	svcs, _ := c.lister.List(everything())
	out := svcs[:0]
	for _, s := range svcs {
		if managed(s) {
			out = append(out, s)
		}
	}
	return out
}

// warnUnplaced reports, once per IP, a Service whose IP no node is
// attached to (its nodes left): the IP stays with the Service.
func (c *Controller) warnUnplaced(svc *corev1.Service, ip netip.Addr) {
	k := key(svc)
	p, ok := c.alloc.Placement(ip)
	if !ok || p.Reachable() {
		delete(c.unplaced, k)
		return
	}
	if c.unplaced[k] == ip {
		return
	}
	c.unplaced[k] = ip
	msg := fmt.Sprintf("no node is attached to the portable %s subnet %s, so no node answers for %s: start a node on that network (%s); the IP stays with this service",
		p.Subnet.Kind, p.Subnet.Prefix, ip, sideFlag(p.Subnet.Kind))
	c.recorder.Event(svc, corev1.EventTypeWarning, ReasonNoEligibleNode, msg)
	c.log.Warn("LoadBalancer IP has no node to hold it", "service", k, "ip", ip)
}
