// Package lbpool describes the portable subnets LoadBalancer services take
// their IPs from (IKS NLB 1.0 semantics): parsing of CIDR[@VLAN] values,
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
	// LabelPublicVLAN and LabelPrivateVLAN are the IKS node labels that
	// say which VLAN a node's public/private interface is on.
	LabelPublicVLAN  = "publicVLAN"
	LabelPrivateVLAN = "privateVLAN"
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
	// publicVLAN=<VLAN> (public) or privateVLAN=<VLAN> (private).
	VLAN string `json:"vlan,omitempty"`
}

// Parse reads a flag value CIDR[@VLAN] for a pool kind. flag names the
// option in errors.
func Parse(kind Kind, flag, value string) (Subnet, error) {
	cidr, vlan, hasVLAN := strings.Cut(strings.TrimSpace(value), "@")
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil:
		return Subnet{}, fmt.Errorf("%s %q is not CIDR[@VLAN]: write a network address and length, optionally with the VLAN, for example 10.10.10.64/29@2234945", flag, value)
	case !p.Addr().Is4():
		return Subnet{}, fmt.Errorf("%s %q: only IPv4 portable subnets are supported", flag, value)
	case p.Masked() != p:
		return Subnet{}, fmt.Errorf("%s %q is not a network address: did you mean %s?", flag, value, p.Masked())
	case p.Bits() > MaxBits:
		return Subnet{}, fmt.Errorf("%s %q is too small: a portable subnet needs at least 8 addresses (/%d: %d reserved, 1 ALB, 4 LoadBalancer IPs); use a /%d or larger", flag, value, MaxBits, ReservedCount, MaxBits)
	case p.Bits() < MinBits:
		return Subnet{}, fmt.Errorf("%s %q is too large: use a prefix between /%d and /%d", flag, value, MinBits, MaxBits)
	}
	if hasVLAN && (vlan == "" || len(validation.IsValidLabelValue(vlan)) > 0) {
		return Subnet{}, fmt.Errorf("%s %q: VLAN %q must be a node label value such as 2234945 (as in the node label %s/%s)", flag, value, vlan, LabelPublicVLAN, LabelPrivateVLAN)
	}
	return Subnet{Kind: kind, Prefix: p, VLAN: vlan}, nil
}

// String formats the subnet as its flag value.
func (s Subnet) String() string {
	if s.VLAN != "" {
		return s.Prefix.String() + "@" + s.VLAN
	}
	return s.Prefix.String()
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

// VLANLabel is the node label naming a node's VLAN for this pool kind.
func (k Kind) VLANLabel() string {
	if k == Private {
		return LabelPrivateVLAN
	}
	return LabelPublicVLAN
}

// LeaseName is the name of the Lease that elects the node announcing ip.
func LeaseName(ip netip.Addr) string {
	return "ip-" + strings.ReplaceAll(ip.String(), ".", "-")
}
