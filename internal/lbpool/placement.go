package lbpool

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/iks-dev/iks/internal/topology"
)

// Attached reports whether node n can hold IPs of subnet s: it has the
// subnet's side (a private-only worker has no public side), is in the
// subnet's zone when the subnet names one, and is on the subnet's VLAN:
// labelled with it when the subnet names its VLAN, otherwise with the
// subnet inside the network of that side's interface (so the node can
// answer ARP for the subnet's addresses where its clients are).
func Attached(n *corev1.Node, s Subnet) bool {
	side := topology.Of(n, s.Kind.Side())
	if !side.Valid() {
		return false
	}
	if s.Zone != "" && topology.Zone(n) != s.Zone {
		return false
	}
	if s.VLAN != "" {
		return side.VLAN == s.VLAN
	}
	net := side.Network()
	return net.Bits() <= s.Prefix.Bits() && net.Contains(s.Prefix.Addr())
}

// Placement is where a subnet lives: the nodes attached to it, their
// zones and VLANs.
type Placement struct {
	Subnet Subnet
	// Nodes attached to the subnet, sorted.
	Nodes []string
	// Zones and VLANs of those nodes, sorted, without duplicates.
	Zones, VLANs []string
}

// Reachable reports whether any node can hold the subnet's IPs.
func (p Placement) Reachable() bool { return len(p.Nodes) > 0 }

// InZone reports whether the subnet serves zone z: its own zone, or the
// zone of one of its nodes.
func (p Placement) InZone(z string) bool {
	if p.Subnet.Zone != "" {
		return p.Subnet.Zone == z
	}
	return slices.Contains(p.Zones, z)
}

// Place computes the placement of every subnet over nodes.
func Place(subnets []Subnet, nodes []*corev1.Node) []Placement {
	out := make([]Placement, 0, len(subnets))
	for _, s := range subnets {
		p := Placement{Subnet: s}
		for _, n := range nodes {
			if !Attached(n, s) {
				continue
			}
			p.Nodes = append(p.Nodes, n.Name)
			if z := topology.Zone(n); z != "" && !slices.Contains(p.Zones, z) {
				p.Zones = append(p.Zones, z)
			}
			if v := topology.Of(n, s.Kind.Side()).VLAN; v != "" && !slices.Contains(p.VLANs, v) {
				p.VLANs = append(p.VLANs, v)
			}
		}
		slices.Sort(p.Nodes)
		slices.Sort(p.Zones)
		slices.Sort(p.VLANs)
		out = append(out, p)
	}
	return out
}
