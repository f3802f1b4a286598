package lbpool

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/topology"
)

// node builds a Node as an agent publishes it: private side, optional
// public side, zone, VLAN labels derived from the networks.
func node(name, zone, private, public string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{topology.LabelZone: zone},
		Annotations: map[string]string{}}}
	for side, cidr := range map[topology.Side]string{topology.Private: private, topology.Public: public} {
		if cidr == "" {
			continue
		}
		p := netip.MustParsePrefix(cidr)
		ann := topology.AnnotationPrivateCIDR
		if side == topology.Public {
			ann = topology.AnnotationPublicCIDR
		}
		n.Annotations[ann] = cidr
		n.Labels[side.VLANLabel()] = topology.VLANName(p)
	}
	return n
}

func TestParseZoneAndVLAN(t *testing.T) {
	for v, want := range map[string]Subnet{
		"10.0.0.64/29@dal10":                {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal10"},
		"10.0.0.64/29@dal10,vlan=2234945":   {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal10", VLAN: "2234945"},
		"10.0.0.64/29@vlan=10.0.0.0-24":     {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), VLAN: "10.0.0.0-24"},
		"10.0.0.64/29@zone=z2, vlan=7":      {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "z2", VLAN: "7"},
		" 10.0.0.64/29 ":                    {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29")},
		"10.0.0.64/29@vlan=7,zone=dal12":    {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal12", VLAN: "7"},
		"10.0.0.64/29@zone=dal12":           {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal12"},
		"10.0.0.64/29@dal13,vlan=a_b.c-1":   {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal13", VLAN: "a_b.c-1"},
		"10.0.0.64/29@vlan=7,zone=dal14":    {Kind: Public, Prefix: netip.MustParsePrefix("10.0.0.64/29"), Zone: "dal14", VLAN: "7"},
		"10.0.0.64/29@dal15,zone=dal15":     {},
		"10.0.0.64/29@dal15,vlan=1,vlan=2":  {},
		"10.0.0.64/29@dal15,vlan=1,,":       {},
		"10.0.0.64/29@=x":                   {},
		"10.0.0.64/29@dal15,vlan=1 2":       {},
		"10.0.0.64/29@dal 15":               {},
		"10.0.0.64/29@dal15,dal16,vlan=1":   {},
		"10.0.0.64/29@zone=,vlan=1":         {},
		"10.0.0.64/29@-bad":                 {},
		"10.0.0.64/29@vlan=-bad":            {},
		"10.0.0.64/29@dal15,vlan=1,zone=x2": {},
	} {
		got, err := Parse(Public, "--portable-public-subnet", v)
		if !want.Prefix.IsValid() {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want an error", v, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", v, got, err, want)
			continue
		}
		if back, err := Parse(Public, "", got.String()); err != nil || back != got {
			t.Errorf("String() %q does not parse back: %+v, %v", got.String(), back, err)
		}
	}
}

func TestAttached(t *testing.T) {
	pubA := Subnet{Kind: Public, Prefix: netip.MustParsePrefix("10.9.4.64/29")}
	privA := Subnet{Kind: Private, Prefix: netip.MustParsePrefix("10.9.1.64/29")}
	privB := Subnet{Kind: Private, Prefix: netip.MustParsePrefix("10.9.2.64/29"), Zone: "z2"}
	routed := Subnet{Kind: Private, Prefix: netip.MustParsePrefix("10.50.0.0/29"), VLAN: "10.9.1.0-24"}
	dual := node("dual", "z1", "10.9.1.2/24", "10.9.4.2/24")
	privOnly := node("priv", "z1", "10.9.1.3/24", "")
	other := node("other", "z2", "10.9.2.2/24", "")
	wrongZone := node("wz", "z1", "10.9.2.3/24", "")
	unpublished := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new"}}
	for _, c := range []struct {
		n    *corev1.Node
		s    Subnet
		want bool
	}{
		{dual, pubA, true},
		{dual, privA, true},
		{privOnly, pubA, false}, // no public side
		{privOnly, privA, true},
		{other, privA, false}, // another L2 network
		{other, privB, true},
		{wrongZone, privB, false}, // on the network but not in the subnet's zone
		{dual, routed, true},      // explicit VLAN: the label decides
		{other, routed, false},
		{unpublished, privA, false},
		{node("big", "z1", "10.9.0.2/16", ""), privA, true},
		{node("tiny", "z1", "10.9.1.66/30", ""), privA, false}, // network smaller than the subnet
	} {
		if got := Attached(c.n, c.s); got != c.want {
			t.Errorf("Attached(%s, %s %s) = %v, want %v", c.n.Name, c.s.Kind, c.s, got, c.want)
		}
	}
	ps := Place([]Subnet{pubA, privA, privB, {Kind: Public, Prefix: netip.MustParsePrefix("10.60.0.0/29")}},
		[]*corev1.Node{other, privOnly, dual, wrongZone})
	if got := ps[1].Nodes; len(got) != 2 || got[0] != "dual" || got[1] != "priv" {
		t.Errorf("private subnet A placed on %v, want [dual priv]", got)
	}
	if !ps[2].InZone("z2") || ps[2].InZone("z1") || !ps[1].InZone("z1") || ps[1].InZone("z2") {
		t.Errorf("zones: %+v", ps)
	}
	if ps[3].Reachable() || len(ps[3].Nodes) != 0 {
		t.Errorf("a subnet no node is on is reachable: %+v", ps[3])
	}
	if got := ps[0].VLANs; len(got) != 1 || got[0] != "10.9.4.0-24" {
		t.Errorf("public VLANs %v, want [10.9.4.0-24]", got)
	}
}
