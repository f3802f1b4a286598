package netpol

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/iks-dev/iks/internal/calicosel"
)

// Policy ID prefixes of the Calico kinds.
const (
	gnpPrefix = "gnp"
	cnpPrefix = "cnp"
)

// FromCalicoPolicy maps a Calico GlobalNetworkPolicy (ns "") or
// NetworkPolicy into the model.
func FromCalicoPolicy(ns, name string, spec *CalicoPolicySpec) (*Policy, error) {
	kind, id := "globalnetworkpolicy "+name, gnpPrefix+":"+name
	if ns != "" {
		kind, id = "networkpolicy.projectcalico.org "+ns+"/"+name, cnpPrefix+":"+ns+"/"+name
	}
	p, err := calicoPolicy(ns, id, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return p, nil
}

func calicoPolicy(ns, id string, spec *CalicoPolicySpec) (*Policy, error) {
	if spec.Tier != "" && spec.Tier != DefaultTier {
		return nil, fmt.Errorf("spec.tier %q: iks has only the default tier; remove spec.tier", spec.Tier)
	}
	p := &Policy{ID: id, Tier: DefaultTier, Order: math.Inf(1), Global: ns == "",
		PreDNAT: spec.PreDNAT, DoNotTrack: spec.DoNotTrack, ApplyOnForward: spec.ApplyOnForward}
	if spec.Order != nil {
		p.Order = *spec.Order
	}
	if err := checkHostOptions(spec); err != nil {
		return nil, err
	}
	sel, err := parseSel("spec.selector", spec.Selector)
	if err != nil {
		return nil, err
	}
	pods := sel
	if spec.ServiceAccountSelector != "" {
		sa, err := parseSel("spec.serviceAccountSelector", spec.ServiceAccountSelector)
		if err != nil {
			return nil, err
		}
		pods = and(sel, saMatcher{sa})
	}
	p.Selects = Selector{Namespace: ns, Pods: pods}
	if spec.NamespaceSelector != "" {
		if ns != "" {
			return nil, fmt.Errorf("spec.namespaceSelector: a namespaced NetworkPolicy has none; use a GlobalNetworkPolicy")
		}
		nsSel, err := parseSel("spec.namespaceSelector", spec.NamespaceSelector)
		if err != nil {
			return nil, err
		}
		p.Selects.Namespaces = nsSel
	}
	types := spec.Types
	if len(types) == 0 {
		// Calico's default: the directions with rules, ingress if none.
		if len(spec.Ingress) > 0 || len(spec.Egress) == 0 {
			types = append(types, "Ingress")
		}
		if len(spec.Egress) > 0 {
			types = append(types, "Egress")
		}
	}
	for _, t := range types {
		switch t {
		case "Ingress":
			p.AppliesIngress = true
		case "Egress":
			p.AppliesEgress = true
		default:
			return nil, fmt.Errorf("spec.types: %q is no policy type: use Ingress or Egress", t)
		}
	}
	p.Ingress, p.Egress = []Rule{}, []Rule{}
	for i := range spec.Ingress {
		r, skip, err := calicoRule(ns, &spec.Ingress[i], id, Ingress)
		if err != nil {
			return nil, fmt.Errorf("spec.ingress[%d]: %w", i, err)
		}
		if !skip {
			p.Ingress = append(p.Ingress, r)
		}
	}
	for i := range spec.Egress {
		r, skip, err := calicoRule(ns, &spec.Egress[i], id, Egress)
		if err != nil {
			return nil, fmt.Errorf("spec.egress[%d]: %w", i, err)
		}
		if !skip {
			p.Egress = append(p.Egress, r)
		}
	}
	return p, nil
}

// checkHostOptions applies Calico's rules on preDNAT, doNotTrack and
// applyOnForward (the CRDs refuse these at admission too).
func checkHostOptions(spec *CalicoPolicySpec) error {
	switch {
	case spec.PreDNAT && spec.DoNotTrack:
		return fmt.Errorf("spec.preDNAT and spec.doNotTrack are both true: a policy is one or the other")
	case (spec.PreDNAT || spec.DoNotTrack) && !spec.ApplyOnForward:
		return fmt.Errorf("spec.applyOnForward must be true with preDNAT or doNotTrack")
	case spec.PreDNAT && len(spec.Egress) > 0:
		return fmt.Errorf("spec.egress: a preDNAT policy has only ingress rules; remove spec.egress or set preDNAT: false")
	}
	if spec.PreDNAT {
		for _, t := range spec.Types {
			if t == "Egress" {
				return fmt.Errorf("spec.types: a preDNAT policy applies to ingress only; remove Egress")
			}
		}
	}
	return nil
}

func parseSel(field, s string) (LabelMatcher, error) {
	sel, err := calicosel.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return sel, nil
}

func calicoRule(ns string, cr *CalicoRule, id string, d Direction) (r Rule, skip bool, err error) {
	if cr.IPVersion != nil && *cr.IPVersion == 6 {
		return r, true, nil // pods and nodes are IPv4 here
	}
	switch Action(cr.Action) {
	case Allow, Deny, Log, Pass:
		r.Action = Action(cr.Action)
	default:
		return r, false, fmt.Errorf("action %q: use Allow, Deny, Log or Pass", cr.Action)
	}
	if r.Action == Log {
		r.LogPrefix = truncate(fmt.Sprintf("iks-policy %s %s: ", strings.SplitN(id, ":", 2)[1], d), 120)
	}
	m := &CalicoMatch{}
	if m.Protocol, err = calicoProto("protocol", cr.Protocol); err != nil {
		return r, false, err
	}
	if m.NotProtocol, err = calicoProto("notProtocol", cr.NotProtocol); err != nil {
		return r, false, err
	}
	if m.ICMP, err = calicoICMP("icmp", cr.ICMP); err != nil {
		return r, false, err
	}
	if m.NotICMP, err = calicoICMP("notICMP", cr.NotICMP); err != nil {
		return r, false, err
	}
	if m.Src, err = calicoEntity(ns, "source", &cr.Source); err != nil {
		return r, false, err
	}
	if m.Dst, err = calicoEntity(ns, "destination", &cr.Destination); err != nil {
		return r, false, err
	}
	for _, e := range []Entity{m.Src, m.Dst} {
		if len(e.Ports)+len(e.NotPorts) > 0 && !portProto(m.Protocol) {
			return r, false, fmt.Errorf("ports need protocol TCP, UDP, SCTP or UDPLite (protocol is %q)", m.Protocol)
		}
	}
	for _, pt := range m.Src.Ports {
		if pt.Name != "" {
			return r, false, fmt.Errorf("source.ports: named port %q: named ports are for the destination only", pt.Name)
		}
	}
	for i := range m.Dst.Ports {
		m.Dst.Ports[i].Protocol = m.Protocol
	}
	r.Calico = m
	return r, false, nil
}

func portProto(p string) bool { return p == "tcp" || p == "udp" || p == "sctp" || p == "udplite" }

// calicoProto maps a Calico protocol to nft's name or number.
func calicoProto(field string, v *intstr.IntOrString) (string, error) {
	if v == nil {
		return "", nil
	}
	if v.Type == intstr.Int {
		if v.IntVal < 1 || v.IntVal > 255 {
			return "", fmt.Errorf("%s %d: a protocol number is 1..255", field, v.IntVal)
		}
		return strconv.Itoa(int(v.IntVal)), nil
	}
	switch strings.ToUpper(v.StrVal) {
	case "TCP":
		return "tcp", nil
	case "UDP":
		return "udp", nil
	case "ICMP":
		return "icmp", nil
	case "SCTP":
		return "sctp", nil
	case "UDPLITE":
		return "udplite", nil
	case "ICMPV6":
		return "ipv6-icmp", nil
	}
	if n, err := strconv.Atoi(v.StrVal); err == nil && n >= 1 && n <= 255 {
		return v.StrVal, nil
	}
	return "", fmt.Errorf("%s %q: use TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1..255", field, v.StrVal)
}

func calicoICMP(field string, c *CalicoICMP) (*ICMP, error) {
	if c == nil {
		return nil, nil
	}
	if c.Type == nil {
		if c.Code != nil {
			return nil, fmt.Errorf("%s.code needs %s.type", field, field)
		}
		return nil, nil
	}
	if *c.Type < 0 || *c.Type > 254 || c.Code != nil && (*c.Code < 0 || *c.Code > 255) {
		return nil, fmt.Errorf("%s: type is 0..254 and code 0..255", field)
	}
	return &ICMP{Type: *c.Type, Code: c.Code}, nil
}

func calicoEntity(ns, field string, ce *CalicoEntity) (Entity, error) {
	var e Entity
	var err error
	if ce.Nets != nil {
		if e.Nets, err = parseNets(field+".nets", ce.Nets); err != nil {
			return e, err
		}
	}
	if e.NotNets, err = parseNets(field+".notNets", ce.NotNets); err != nil {
		return e, err
	}
	if e.Ports, err = calicoPorts(field+".ports", ce.Ports); err != nil {
		return e, err
	}
	if e.NotPorts, err = calicoPorts(field+".notPorts", ce.NotPorts); err != nil {
		return e, err
	}
	for _, pt := range e.NotPorts {
		if pt.Name != "" {
			return e, fmt.Errorf("%s.notPorts: named port %q: notPorts takes numbers and ranges", field, pt.Name)
		}
	}
	if ce.Selector != "" || ce.NamespaceSelector != "" || ce.ServiceAccounts != nil {
		s := &Selector{Namespace: ns}
		if ce.Selector != "" {
			if s.Pods, err = parseSel(field+".selector", ce.Selector); err != nil {
				return e, err
			}
		}
		if ce.NamespaceSelector != "" {
			if s.Namespaces, err = parseSel(field+".namespaceSelector", ce.NamespaceSelector); err != nil {
				return e, err
			}
			s.Namespace = ""
		}
		if sa := ce.ServiceAccounts; sa != nil {
			if len(sa.Names) > 0 {
				q := make([]string, len(sa.Names))
				for i, n := range sa.Names {
					q[i] = "'" + strings.ReplaceAll(n, "'", "") + "'"
				}
				s.Pods = and(s.Pods, calicosel.MustParse(LabelServiceAccount+" in {"+strings.Join(q, ",")+"}"))
			}
			if sa.Selector != "" {
				sel, err := parseSel(field+".serviceAccounts.selector", sa.Selector)
				if err != nil {
					return e, err
				}
				s.Pods = and(s.Pods, saMatcher{sel})
			}
		}
		e.Selector = s
	}
	if ce.NotSelector != "" {
		sel, err := parseSel(field+".notSelector", ce.NotSelector)
		if err != nil {
			return e, err
		}
		e.NotSelector = &Selector{Namespace: ns, Pods: sel}
	}
	return e, nil
}

// parseNets parses CIDRs or addresses into ranges; IPv6 ones are left
// out (the result is empty, not nil, when every one was IPv6).
func parseNets(field string, nets []string) ([]Range, error) {
	if nets == nil {
		return nil, nil
	}
	out := []Range{}
	for _, n := range nets {
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return nil, fmt.Errorf("%s: %q is no CIDR (e.g. 10.0.0.0/8) or address: %w", field, n, err)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		if pfx.Addr().Is4() {
			out = append(out, prefixRange(pfx.Masked()))
		}
	}
	return mergeRanges(out), nil
}

// calicoPorts parses Calico ports: a number, "N", "LOW:HIGH" or a name.
func calicoPorts(field string, ports []intstr.IntOrString) ([]Port, error) {
	var out []Port
	for _, v := range ports {
		if v.Type == intstr.Int {
			if v.IntVal < 0 || v.IntVal > 65535 {
				return nil, fmt.Errorf("%s: port %d is outside 0..65535", field, v.IntVal)
			}
			out = append(out, Port{Port: v.IntVal})
			continue
		}
		s := v.StrVal
		if lo, hi, ok := strings.Cut(s, ":"); ok {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a < 0 || b > 65535 {
				return nil, fmt.Errorf("%s: %q is no port range: write LOW:HIGH with numbers 0..65535", field, s)
			}
			if a > b {
				return nil, fmt.Errorf("%s: range %q is upside down: write %d:%d", field, s, b, a)
			}
			out = append(out, Port{Port: int32(a), EndPort: int32(b)})
			continue
		}
		if n, err := strconv.Atoi(s); err == nil {
			if n < 0 || n > 65535 {
				return nil, fmt.Errorf("%s: port %d is outside 0..65535", field, n)
			}
			out = append(out, Port{Port: int32(n)})
			continue
		}
		if s == "" {
			return nil, fmt.Errorf("%s: empty port", field)
		}
		out = append(out, Port{Name: s})
	}
	return out, nil
}

// FromHostEndpoint maps a Calico HostEndpoint into the model.
func FromHostEndpoint(name string, lbl map[string]string, spec *CalicoHostEndpointSpec) (*HostEndpoint, error) {
	h := &HostEndpoint{Name: name, Node: spec.Node, Interface: spec.InterfaceName, Labels: labels.Set(lbl)}
	if spec.Node == "" {
		return nil, fmt.Errorf("hostendpoint %s: spec.node is empty: name the node the interface is on", name)
	}
	for _, s := range spec.ExpectedIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("hostendpoint %s: spec.expectedIPs: %q is no address", name, s)
		}
		if a.Is4() {
			h.IPs = append(h.IPs, a)
		}
	}
	if h.Interface == "" && len(spec.ExpectedIPs) == 0 {
		return nil, fmt.Errorf("hostendpoint %s: give spec.interfaceName (or \"*\") or spec.expectedIPs", name)
	}
	for _, p := range spec.Ports {
		proto, err := calicoProto("spec.ports protocol", &intstr.IntOrString{Type: intstr.String, StrVal: p.Protocol})
		if err != nil {
			return nil, fmt.Errorf("hostendpoint %s: %w", name, err)
		}
		h.Ports = append(h.Ports, NamedPort{Name: p.Name, Protocol: proto, Port: p.Port})
	}
	return h, nil
}

// FromNetworkSet maps a GlobalNetworkSet (ns "") or NetworkSet into the
// model; a global one carries calicosel.Global for global().
func FromNetworkSet(ns, name string, lbl map[string]string, spec *CalicoNetworkSetSpec) (*NetworkSet, error) {
	nets, err := parseNets("spec.nets", spec.Nets)
	if err != nil {
		return nil, fmt.Errorf("networkset %s: %w", strings.TrimPrefix(ns+"/"+name, "/"), err)
	}
	l := labels.Set{}
	for k, v := range lbl {
		l[k] = v
	}
	if ns == "" {
		l[calicosel.Global] = ""
	} else {
		l[LabelNamespace] = ns
	}
	return &NetworkSet{Namespace: ns, Name: name, Labels: l, Nets: nets}, nil
}
