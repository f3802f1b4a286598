// Package lbpool describes the portable subnets LoadBalancer services take
// their IPs from (IKS NLB 1.0 semantics): parsing of CIDR[@ZONE] values,
// which nodes are attached to each subnet's VLAN,
// the split of each subnet into reserved, ALB and service addresses, the
// annotations that pick a pool or an IP, and the ConfigMap through which
// the server publishes the pools to the nodes' speakers. The server's
// allocator, the agents' speaker and the CLI share it.
package lbpool

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iks-dev/iks/internal/topology"
)

// Kind is a pool type: public or private.
type Kind string

// Pool kinds.
const (
	Public  Kind = "public"
	Private Kind = "private"
)

// Annotations and names shared by server, agents and CLI.
const (
	// AnnotationIPType picks the pool: public (default) or private.
	AnnotationIPType = "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type"
	// AnnotationIP asks for a specific IP (like spec.loadBalancerIP).
	AnnotationIP = "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip"
	// Namespace holds the speakers' per-IP Leases.
	Namespace = "iks-lb"
	// ConfigMapNamespace and ConfigMapName publish the pools to nodes.
	ConfigMapNamespace = "kube-system"
	ConfigMapName      = "iks-portable-subnets"
	// ConfigMapKey is the ConfigMap data key holding the JSON pool list.
	ConfigMapKey = "subnets.json"
	// SpeakerUser is the identity nodes impersonate to hold Leases in
	// Namespace (NodeRestriction limits node identities to leases in
	// kube-node-lease).
	SpeakerUser = "iks:lb-speaker"
	// AnnotationZone picks the zone whose portable subnets give the IP
	// (IKS's annotation for multizone clusters).
	AnnotationZone = "service.kubernetes.io/ibm-load-balancer-cloud-provider-zone"
)

// Per-subnet address split: the first ReservedCount addresses serve
// network functions (network, gateway, ...), the next one is the subnet's
// ALB IP, the rest go to LoadBalancer services.
const (
	ReservedCount = 3
	// MaxBits is the smallest subnet (a /29: 3 reserved, 1 ALB, 4 services).
	MaxBits = 29
	// MinBits is the largest subnet accepted.
	MinBits = 20
)

// Subnet is one portable subnet.
type Subnet struct {
	Kind   Kind         `json:"type"`
	Prefix netip.Prefix `json:"cidr"`
	// VLAN, when set, limits announcing to nodes labelled
	// publicVLAN=<VLAN> (public) or privateVLAN=<VLAN> (private); when
	// unset, the subnet is on the VLAN of the nodes whose interface of
	// that side has the subnet inside its own network.
	VLAN string `json:"vlan,omitempty"`
	// Zone, when set, limits the subnet to the nodes of that zone.
	Zone string `json:"zone,omitempty"`
}

// Parse reads a flag value CIDR[@ZONE][,vlan=VLAN] (also
// CIDR@zone=ZONE,vlan=VLAN) for a pool kind. flag names the option in
// errors.
func Parse(kind Kind, flag, value string) (Subnet, error) {
	cidr, attrs, hasAttrs := strings.Cut(strings.TrimSpace(value), "@")
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil:
		return Subnet{}, fmt.Errorf("%s %q is not CIDR[@ZONE][,vlan=VLAN]: write a network address and length, optionally with its zone and VLAN, for example 10.10.10.64/29 or 10.10.10.64/29@dal10,vlan=2234945", flag, value)
	case !p.Addr().Is4():
		return Subnet{}, fmt.Errorf("%s %q: only IPv4 portable subnets are supported", flag, value)
	case p.Masked() != p:
		return Subnet{}, fmt.Errorf("%s %q is not a network address: did you mean %s?", flag, value, p.Masked())
	case p.Bits() > MaxBits:
		return Subnet{}, fmt.Errorf("%s %q is too small: a portable subnet needs at least 8 addresses (/%d: %d reserved, 1 ALB, 4 LoadBalancer IPs); use a /%d or larger", flag, value, MaxBits, ReservedCount, MaxBits)
	case p.Bits() < MinBits:
		return Subnet{}, fmt.Errorf("%s %q is too large: use a prefix between /%d and /%d", flag, value, MinBits, MaxBits)
	}
	sub := Subnet{Kind: kind, Prefix: p}
	if !hasAttrs {
		return sub, nil
	}
	for i, item := range strings.Split(attrs, ",") {
		k, v, kv := strings.Cut(strings.TrimSpace(item), "=")
		if !kv && i == 0 {
			k, v = "zone", k
		}
		switch {
		case k == "zone" && sub.Zone == "":
			if problem := topology.ValidZone(v); problem != "" {
				return Subnet{}, fmt.Errorf("%s %q: zone %q is not a label value (%s): use the --zone of the nodes on this subnet, for example dal10", flag, value, v, problem)
			}
			sub.Zone = v
		case k == "vlan" && sub.VLAN == "":
			if v == "" || len(validation.IsValidLabelValue(v)) > 0 {
				return Subnet{}, fmt.Errorf("%s %q: VLAN %q must be a node label value such as 2234945 (as in the node labels %s/%s)", flag, value, v, topology.LabelPublicVLAN, topology.LabelPrivateVLAN)
			}
			sub.VLAN = v
		default:
			return Subnet{}, fmt.Errorf("%s %q: %q is not understood after '@': write CIDR@ZONE, CIDR@ZONE,vlan=VLAN or CIDR@vlan=VLAN (each once)", flag, value, item)
		}
	}
	return sub, nil
}

// String formats the subnet as its flag value.
func (s Subnet) String() string {
	var attrs []string
	if s.Zone != "" {
		attrs = append(attrs, s.Zone)
	}
	if s.VLAN != "" {
		attrs = append(attrs, "vlan="+s.VLAN)
	}
	if len(attrs) == 0 {
		return s.Prefix.String()
	}
	return s.Prefix.String() + "@" + strings.Join(attrs, ",")
}

// Reserved returns the addresses kept for network functions.
func (s Subnet) Reserved() []netip.Addr {
	out := make([]netip.Addr, 0, ReservedCount)
	a := s.Prefix.Addr()
	for range ReservedCount {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// ALBIP returns the address kept for the subnet's ALB.
func (s Subnet) ALBIP() netip.Addr {
	a := s.Prefix.Addr()
	for range ReservedCount {
		a = a.Next()
	}
	return a
}

// ServiceIPs returns the addresses LoadBalancer services may get, in order.
func (s Subnet) ServiceIPs() []netip.Addr {
	var out []netip.Addr
	for a := s.ALBIP().Next(); s.Prefix.Contains(a); a = a.Next() {
		out = append(out, a)
	}
	return out
}

// IsServiceIP reports whether a is one of the subnet's service addresses.
func (s Subnet) IsServiceIP(a netip.Addr) bool {
	return s.Prefix.Contains(a) && s.ALBIP().Less(a)
}

// Find returns the subnet containing a.
func Find(subnets []Subnet, a netip.Addr) (Subnet, bool) {
	for _, s := range subnets {
		if s.Prefix.Contains(a) {
			return s, true
		}
	}
	return Subnet{}, false
}

// ParseKind reads the ip-type annotation value ("" is public).
func ParseKind(v string) (Kind, error) {
	switch Kind(strings.ToLower(strings.TrimSpace(v))) {
	case "", Public:
		return Public, nil
	case Private:
		return Private, nil
	}
	return "", fmt.Errorf("annotation %s=%q is not public or private: set it to public (the default) or private", AnnotationIPType, v)
}

// Side is the node side whose interface holds this kind's IPs.
func (k Kind) Side() topology.Side {
	if k == Private {
		return topology.Private
	}
	return topology.Public
}

// LeaseName is the name of the Lease that elects the node announcing ip.
func LeaseName(ip netip.Addr) string {
	return "ip-" + strings.ReplaceAll(ip.String(), ".", "-")
}
