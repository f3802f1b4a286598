package routing

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/iks-dev/iks/internal/topology"
)

// Topology is the node's place in the IKS network model, published
// on its own Node with the routing annotations (netextras.go): the
// private side (node IP), the optional public side and the zone.
type Topology struct {
	NodeIP, PublicIP netip.Addr
	Zone             string
	// UserLabels are the --node-label values: a VLAN label the user set
	// there is theirs and is not replaced by the derived one.
	UserLabels []string
}

// metadata returns the labels and annotations to merge-patch onto the
// Node; a nil value removes a key (the public side of a node that lost
// it).
func (t Topology) metadata() (labels, annotations map[string]any, err error) {
	user := map[string]bool{}
	for _, l := range t.UserLabels {
		k, _, _ := strings.Cut(l, "=")
		user[k] = true
	}
	labels = map[string]any{topology.LabelZone: t.Zone}
	annotations = map[string]any{}
	private, err := NodeSubnet(t.NodeIP)
	if err != nil {
		return nil, nil, err
	}
	annotations[topology.AnnotationPrivateCIDR] = netip.PrefixFrom(t.NodeIP, private.Bits()).String()
	if !user[topology.LabelPrivateVLAN] {
		labels[topology.LabelPrivateVLAN] = topology.VLANName(private)
	}
	if !t.PublicIP.IsValid() {
		labels[topology.LabelPrivateOnly] = "true"
		annotations[topology.AnnotationPublicCIDR] = nil
		if !user[topology.LabelPublicVLAN] {
			labels[topology.LabelPublicVLAN] = nil
		}
		return labels, annotations, nil
	}
	public, err := NodeSubnet(t.PublicIP)
	if err != nil {
		return nil, nil, fmt.Errorf("public side: %w", err)
	}
	labels[topology.LabelPrivateOnly] = "false"
	annotations[topology.AnnotationPublicCIDR] = netip.PrefixFrom(t.PublicIP, public.Bits()).String()
	if !user[topology.LabelPublicVLAN] {
		labels[topology.LabelPublicVLAN] = topology.VLANName(public)
	}
	return labels, annotations, nil
}

// statusWithTopology is the router's status with the node's zone and
// sides, for `iks net status`.
func (p *Component) statusWithTopology(ctx context.Context) (Status, error) {
	st, err := p.router.Status(ctx)
	st.Zone = p.topo.zone()
	for _, side := range []struct {
		name string
		ip   netip.Addr
	}{{"private", p.topo.NodeIP}, {"public", p.topo.PublicIP}} {
		ss := SideStatus{Side: side.name}
		if side.ip.IsValid() {
			if net, err := NodeSubnet(side.ip); err == nil {
				ss.Address = netip.PrefixFrom(side.ip, net.Bits())
				ss.VLAN = topology.VLANName(net)
			}
		}
		st.Sides = append(st.Sides, ss)
	}
	return st, err
}

func (t Topology) zone() string {
	if t.Zone == "" {
		return topology.DefaultZone
	}
	return t.Zone
}
