package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FromNetworkPolicy maps a Kubernetes NetworkPolicy into the model.
func FromNetworkPolicy(np *networkingv1.NetworkPolicy) (*Policy, error) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("networkpolicy %s/%s: spec.podSelector: %w", np.Namespace, np.Name, err)
	}
	p := &Policy{
		ID:      kubeNPPrefix + ":" + np.Namespace + "/" + np.Name,
		Tier:    DefaultTier,
		Order:   KubeNPOrder,
		Selects: Selector{Namespace: np.Namespace, Pods: sel},
	}
	types := np.Spec.PolicyTypes
	if len(types) == 0 {
		// The API defaults it; objects from elsewhere (tests) may not.
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		switch t {
		case networkingv1.PolicyTypeIngress:
			p.AppliesIngress = true
		case networkingv1.PolicyTypeEgress:
			p.AppliesEgress = true
		}
	}
	p.Ingress = []Rule{}
	for i, r := range np.Spec.Ingress {
		rule, err := kubeRule(np.Namespace, r.From, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("networkpolicy %s/%s: spec.ingress[%d]: %w", np.Namespace, np.Name, i, err)
		}
		p.Ingress = append(p.Ingress, rule)
	}
	p.Egress = []Rule{}
	for i, r := range np.Spec.Egress {
		rule, err := kubeRule(np.Namespace, r.To, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("networkpolicy %s/%s: spec.egress[%d]: %w", np.Namespace, np.Name, i, err)
		}
		p.Egress = append(p.Egress, rule)
	}
	return p, nil
}

func kubeRule(ns string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (Rule, error) {
	r := Rule{Action: Allow}
	for i, peer := range peers {
		switch {
		case peer.IPBlock != nil:
			ranges, err := ipBlockRanges(peer.IPBlock)
			if err != nil {
				return r, fmt.Errorf("peer %d: %w", i, err)
			}
			r.Peers = append(r.Peers, Peer{Ranges: ranges})
		default:
			s := Selector{}
			if peer.PodSelector != nil {
				sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil {
					return r, fmt.Errorf("peer %d podSelector: %w", i, err)
				}
				s.Pods = sel
			}
			if peer.NamespaceSelector != nil {
				sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
				if err != nil {
					return r, fmt.Errorf("peer %d namespaceSelector: %w", i, err)
				}
				s.Namespaces = sel
			} else {
				s.Namespace = ns
			}
			r.Peers = append(r.Peers, Peer{Selector: &s})
		}
	}
	for i, pp := range ports {
		proto, err := nftProto(pp.Protocol)
		if err != nil {
			return r, fmt.Errorf("port %d: %w", i, err)
		}
		port := Port{Protocol: proto}
		if pp.Port != nil {
			if pp.Port.Type == intstr.String {
				port.Name = pp.Port.StrVal
			} else {
				port.Port = pp.Port.IntVal
			}
		}
		if pp.EndPort != nil && port.Name == "" {
			if *pp.EndPort < port.Port {
				return r, fmt.Errorf("port %d: endPort %d is below port %d: use a range low..high", i, *pp.EndPort, port.Port)
			}
			port.EndPort = *pp.EndPort
		}
		r.Ports = append(r.Ports, port)
	}
	return r, nil
}

// nftProto maps a Kubernetes protocol to nft's name (TCP when unset).
func nftProto(p *corev1.Protocol) (string, error) {
	if p == nil {
		return "tcp", nil
	}
	switch *p {
	case corev1.ProtocolTCP, "":
		return "tcp", nil
	case corev1.ProtocolUDP:
		return "udp", nil
	case corev1.ProtocolSCTP:
		return "sctp", nil
	}
	return "", fmt.Errorf("unknown protocol %q: use TCP, UDP or SCTP", *p)
}

// ipBlockRanges turns cidr minus its excepts into disjoint ranges.
// IPv6 blocks give no ranges (pods are IPv4 only).
func ipBlockRanges(b *networkingv1.IPBlock) ([]Range, error) {
	pfx, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("ipBlock.cidr %q: %w", b.CIDR, err)
	}
	if !pfx.Addr().Is4() {
		return nil, nil
	}
	ranges := []Range{prefixRange(pfx.Masked())}
	for _, ex := range b.Except {
		e, err := netip.ParsePrefix(ex)
		if err != nil {
			return nil, fmt.Errorf("ipBlock.except %q: %w", ex, err)
		}
		if e.Addr().Is4() {
			ranges = subtract(ranges, prefixRange(e.Masked()))
		}
	}
	return ranges, nil
}

func prefixRange(p netip.Prefix) Range {
	from := p.Addr()
	b := from.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if p.Bits() < 32 {
		v |= 1<<(32-p.Bits()) - 1
	}
	return Range{From: from, To: u32Addr(v)}
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// subtract removes cut from every range.
func subtract(rs []Range, cut Range) []Range {
	var out []Range
	c0, c1 := addrU32(cut.From), addrU32(cut.To)
	for _, r := range rs {
		r0, r1 := addrU32(r.From), addrU32(r.To)
		if c1 < r0 || c0 > r1 {
			out = append(out, r)
			continue
		}
		if c0 > r0 {
			out = append(out, Range{From: r.From, To: u32Addr(c0 - 1)})
		}
		if c1 < r1 {
			out = append(out, Range{From: u32Addr(c1 + 1), To: r.To})
		}
	}
	return out
}

// mergeRanges sorts and joins overlapping or adjacent ranges.
func mergeRanges(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	s := append([]Range(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return addrU32(s[i].From) < addrU32(s[j].From) })
	out := []Range{s[0]}
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if uint64(addrU32(r.From)) <= uint64(addrU32(last.To))+1 {
			if addrU32(r.To) > addrU32(last.To) {
				last.To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// FromPod maps a running pod with an IPv4 address into an Endpoint; ok is
// false for host-network, finished or address-less pods.
func FromPod(pod *corev1.Pod, nsLabels map[string]string) (ep *Endpoint, ok bool) {
	if pod.Spec.HostNetwork || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, false
	}
	var ip netip.Addr
	for _, a := range pod.Status.PodIPs {
		if x, err := netip.ParseAddr(a.IP); err == nil && x.Is4() {
			ip = x
			break
		}
	}
	if !ip.IsValid() {
		if x, err := netip.ParseAddr(pod.Status.PodIP); err == nil && x.Is4() {
			ip = x
		}
	}
	if !ip.IsValid() {
		return nil, false
	}
	ep = &Endpoint{Namespace: pod.Namespace, Name: pod.Name, Node: pod.Spec.NodeName, IP: ip,
		Labels: labels.Set(pod.Labels), NamespaceLabels: labels.Set(nsLabels), ServiceAccount: pod.Spec.ServiceAccountName}
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, cp := range c.Ports {
			if cp.Name == "" {
				continue
			}
			proto, err := nftProto(&cp.Protocol)
			if err != nil {
				continue
			}
			ep.Ports = append(ep.Ports, NamedPort{Name: cp.Name, Protocol: proto, Port: cp.ContainerPort})
		}
	}
	return ep, true
}

// shortID is a readable policy ID for comments and logs.
func shortID(id string) string { return strings.TrimPrefix(id, kubeNPPrefix+":") }
