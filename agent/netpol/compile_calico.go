package netpol

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// verdicts are the nft statements a rule's action becomes in one kind
// of chain.
type verdicts map[Action]string

var (
	// normalVerdicts: policy chains of pods and host endpoints return to
	// their dispatch chain with a mark.
	normalVerdicts = verdicts{
		Allow: "meta mark set meta mark | " + allowMark + " return",
		Pass:  "meta mark set meta mark | " + passMark + " return",
		Deny:  "counter drop",
	}
	// preDNATVerdicts: an Allow ends pre-DNAT policy (the packet goes on
	// to DNAT and normal policy), a Pass too: no default drop.
	preDNATVerdicts = verdicts{Allow: "accept", Pass: "accept", Deny: "counter drop"}
	// untrackedVerdicts: an Allow leaves the packet out of conntrack and
	// marks it so that the filter chains accept it.
	untrackedVerdicts = verdicts{
		Allow: "notrack meta mark set meta mark | " + untrackedMark + " accept",
		Pass:  "accept",
		Deny:  "counter drop",
	}
)

// calicoRule returns the nft rules of one Calico rule; name prefixes the
// sets only this rule uses. Every field given must hold; a list (ports,
// a selector's pods and network sets) matches any of its members, which
// may take several nft rules.
func (c *compiler) calicoRule(name string, r Rule, v verdicts) []string {
	m := r.Calico
	var fixed []string
	var alts [][]string
	if m.Protocol != "" {
		fixed = append(fixed, "meta l4proto "+m.Protocol)
	}
	if m.NotProtocol != "" {
		fixed = append(fixed, "meta l4proto != "+m.NotProtocol)
	}
	if i := m.ICMP; i != nil {
		f := fmt.Sprintf("icmp type %d", i.Type)
		if i.Code != nil {
			f += fmt.Sprintf(" icmp code %d", *i.Code)
		}
		fixed = append(fixed, f)
	}
	if i := m.NotICMP; i != nil {
		if i.Code == nil {
			fixed = append(fixed, fmt.Sprintf("icmp type != %d", i.Type))
		} else {
			alts = append(alts, []string{fmt.Sprintf("icmp type != %d", i.Type), fmt.Sprintf("icmp type %d icmp code != %d", i.Type, *i.Code)})
		}
	}
	for _, side := range []struct {
		e          *Entity
		addr, port string
		tag        string
	}{{&m.Src, "ip saddr", "th sport", "s"}, {&m.Dst, "ip daddr", "th dport", "d"}} {
		e := side.e
		if e.Nets != nil {
			if len(e.Nets) == 0 {
				return nil // only nets of another family: never matches
			}
			set := c.rangeSet(name+"-"+side.tag+"nets", e.Nets, "nets of "+name)
			fixed = append(fixed, side.addr+" @"+set)
		}
		if len(e.NotNets) > 0 {
			set := c.rangeSet(name+"-"+side.tag+"notnets", e.NotNets, "notNets of "+name)
			fixed = append(fixed, side.addr+" != @"+set)
		}
		if e.Selector != nil {
			var a []string
			for _, set := range c.selectorSets(e.Selector) {
				a = append(a, side.addr+" @"+set)
			}
			alts = append(alts, a)
		}
		if e.NotSelector != nil {
			for _, set := range c.selectorSets(e.NotSelector) {
				fixed = append(fixed, side.addr+" != @"+set)
			}
		}
		if e.Ports != nil {
			var a []string
			if nums := portList(e.Ports); nums != "" {
				a = append(a, side.port+" { "+nums+" }")
			}
			if set := c.namedPortSet(e.Ports); set != "" {
				a = append(a, "ip daddr . meta l4proto . th dport @"+set)
			}
			alts = append(alts, a)
		}
		if nums := portList(e.NotPorts); nums != "" {
			fixed = append(fixed, side.port+" != { "+nums+" }")
		}
	}
	verdict := v[r.Action]
	if r.Action == Log {
		verdict = fmt.Sprintf("log prefix %q", r.LogPrefix)
	}
	rules := []string{strings.Join(fixed, " ")}
	for _, a := range alts {
		var next []string
		for _, prefix := range rules {
			for _, x := range a {
				next = append(next, strings.TrimSpace(prefix+" "+x))
			}
		}
		rules = next
	}
	for i, r := range rules {
		rules[i] = strings.TrimSpace(r + " " + verdict)
	}
	return rules
}

// portList is the numbers and ranges of ports as an nft set body.
func portList(ports []Port) string {
	var out []string
	for _, p := range ports {
		switch {
		case p.Name != "":
		case p.EndPort > p.Port:
			out = append(out, fmt.Sprintf("%d-%d", p.Port, p.EndPort))
		default:
			out = append(out, fmt.Sprint(p.Port))
		}
	}
	return strings.Join(out, ", ")
}

// namedPortSet returns the set of address . protocol . port of every pod
// having one of ports' named ports ("" when ports has none); rules
// naming the same ports share it.
func (c *compiler) namedPortSet(ports []Port) string {
	var names []string
	for _, p := range ports {
		if p.Name != "" {
			names = append(names, p.Protocol+"/"+p.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	key := "calico " + strings.Join(names, ",")
	set := "n" + hash(key)
	if _, done := c.p.Sets[set]; done {
		return set
	}
	s := c.p.set(set, typeAddrPort, false, truncate("named ports: "+key, 120))
	c.p.members[set] = namedPortMember(ports, nil)
	for _, want := range ports {
		if want.Name == "" {
			continue
		}
		for _, e := range c.all.byPort[want.Name] {
			for _, np := range e.Ports {
				if np.Name == want.Name && np.Protocol == want.Protocol {
					s.add(e.IP.String(), np.Protocol, fmt.Sprint(np.Port))
				}
			}
		}
	}
	return set
}

func (c *compiler) rangeSet(name string, rs []Range, comment string) string {
	s := c.p.set(name, typeAddr, true, truncate(comment, 120))
	for _, rg := range rs {
		if rg.From == rg.To {
			s.add(rg.From.String())
		} else {
			s.add(rg.From.String() + "-" + rg.To.String())
		}
	}
	return name
}

// selectorSets returns the sets holding what sel selects: the pods' set
// (shared with Kubernetes rules naming the same selector) and, when
// network sets or host endpoints match, an interval set of their nets
// and addresses.
func (c *compiler) selectorSets(sel *Selector) []string {
	key := selectorsKey([]*Selector{sel})
	pods := "s" + hash(key)
	if _, done := c.p.Sets[pods]; !done {
		s := c.p.set(pods, typeAddr, false, truncate("pods: "+key, 120))
		c.all.each(sel, func(e *Endpoint) { s.add(e.IP.String()) })
		c.p.members[pods] = selectorMember(sel)
	}
	out := []string{pods}
	nets := "S" + hash(key)
	if _, done := c.p.Sets[nets]; done {
		return append(out, nets)
	}
	var rs []Range
	for _, ns := range c.netsets {
		if selectsNetworkSet(sel, ns, c.all.nsLabels) {
			rs = append(rs, ns.Nets...)
		}
	}
	for _, h := range c.heps {
		if selectsHost(sel, h) {
			for _, ip := range h.IPs {
				rs = append(rs, Range{From: ip, To: ip})
			}
		}
	}
	if len(rs) == 0 {
		return out
	}
	return append(out, c.rangeSet(nets, mergeRanges(rs), "networks and hosts: "+key))
}

// selectsNetworkSet: a namespaced selector matches the network sets of
// its namespace (or of the namespaces its namespace selector picks), a
// global one every network set.
func selectsNetworkSet(sel *Selector, ns *NetworkSet, nsLabels map[string]labels.Set) bool {
	if sel.Namespace != "" && ns.Namespace != sel.Namespace {
		return false
	}
	if sel.Namespaces != nil && (ns.Namespace == "" || !sel.Namespaces.Matches(nsView{ns.Namespace, nsLabels[ns.Namespace]})) {
		return false
	}
	return sel.Pods == nil || sel.Pods.Matches(ns.Labels)
}

// selectsHost: host endpoints have no namespace; only a selector without
// namespace conditions (a global policy's) can pick them.
func selectsHost(sel *Selector, h *HostEndpoint) bool {
	if sel.Namespace != "" || sel.Namespaces != nil {
		return false
	}
	return sel.Pods == nil || sel.Pods.Matches(h.Labels)
}
