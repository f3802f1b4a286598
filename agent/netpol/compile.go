package netpol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Names of the fixed chains and sets of the table.
const (
	ChainForward    = "forward"
	ChainInput      = "input"
	ChainPodIngress = "pod-ingress"
	ChainPodEgress  = "pod-egress"
	SetLocalPods    = "local-pods"
	SetIngressIso   = "ingress-isolated"
	SetEgressIso    = "egress-isolated"

	// allowMark is the packet mark bit a policy chain sets on an Allow
	// before it returns; the dispatch chain clears it and returns.
	allowMark   = "0x00100000"
	allowUnmark = "0xff8fffff" // clears the allow, pass and untracked bits
	// passMark is set by a Calico Pass rule, untrackedMark by a
	// doNotTrack Allow (the filter chains then accept the packet).
	passMark      = "0x00200000"
	untrackedMark = "0x00400000"

	typeAddr     = "ipv4_addr"
	typeAddrPort = "ipv4_addr . inet_proto . inet_service"
)

// Set is a named nftables set in a Program.
type Set struct {
	Type     string
	Interval bool
	Comment  string
	// Elements by their nft text (key parts joined by " . ").
	Elements map[string][]string
}

// Chain is a regular chain of a Program (the base chains' hooks are
// fixed in nft.go).
type Chain struct {
	Comment string
	Rules   []string
}

// Program is the whole table content the engine programs.
type Program struct {
	Chains map[string]*Chain
	Sets   map[string]*Set
	// members tell, for each set whose elements come from pods, the
	// elements one endpoint gives it (incremental.go).
	members map[string]memberFn
	// base and delta: a Program UpdatePods made from base differs from
	// it only by delta's set elements (the writer then sends only those).
	base  *Program
	delta map[string]*setDelta
}

func (p *Program) set(name, typ string, interval bool, comment string) *Set {
	s, ok := p.Sets[name]
	if !ok {
		s = &Set{Type: typ, Interval: interval, Comment: comment, Elements: map[string][]string{}}
		p.Sets[name] = s
	}
	return s
}

func (s *Set) add(key ...string) { s.Elements[strings.Join(key, " . ")] = key }

// Input is what CompileInput programs for one node.
type Input struct {
	Policies      []*Policy
	Endpoints     []*Endpoint
	HostEndpoints []*HostEndpoint
	NetworkSets   []*NetworkSet
	Node          string
	// VethPrefix is the prefix of the host side of pod veths ("cali").
	VethPrefix string
	// Failsafe is what host endpoint policy never cuts (nil:
	// DefaultFailsafe).
	Failsafe *Failsafe
}

// Compile builds the Program that enforces policies on node's endpoints.
// vethPrefix is the prefix of the host side of pod veths ("cali").
func Compile(policies []*Policy, endpoints []*Endpoint, node, vethPrefix string) *Program {
	return CompileInput(&Input{Policies: policies, Endpoints: endpoints, Node: node, VethPrefix: vethPrefix})
}

// compiler holds what rule compilation looks up.
type compiler struct {
	p       *Program
	all     *index
	netsets []*NetworkSet
	heps    []*HostEndpoint
}

// CompileInput builds the Program for in: pods' policies, and host
// endpoint policies for in.Node's host endpoints (hostep.go).
func CompileInput(in *Input) *Program {
	policies, endpoints, node, vethPrefix := in.Policies, in.Endpoints, in.Node, in.VethPrefix
	p := &Program{Chains: map[string]*Chain{}, Sets: map[string]*Set{}, members: map[string]memberFn{}}
	var local []*Endpoint
	localPods := p.set(SetLocalPods, typeAddr, false, "this node's pods known to the policy engine")
	p.members[SetLocalPods] = func(e *Endpoint, add addFn) {
		if e.Node == node {
			add(e.IP.String())
		}
	}
	for _, e := range endpoints {
		if e.Node == node {
			local = append(local, e)
			localPods.add(e.IP.String())
		}
	}
	all, localIx := newIndex(endpoints), newIndex(local)
	cc := &compiler{p: p, all: all, netsets: in.NetworkSets, heps: in.HostEndpoints}
	isoIn := p.set(SetIngressIso, typeAddr, false, "local pods selected by an ingress policy")
	isoEg := p.set(SetEgressIso, typeAddr, false, "local pods selected by an egress policy")
	var isoSel [2][]*Selector // ingress, egress: the selectors of the policies isolating
	for i, name := range []string{SetIngressIso, SetEgressIso} {
		p.members[name] = func(e *Endpoint, add addFn) {
			if e.Node != node {
				return
			}
			for _, s := range isoSel[i] {
				if s.Matches(e) {
					add(e.IP.String())
					return
				}
			}
		}
	}
	pods := "\"" + vethPrefix + "*\""
	p.Chains[ChainForward] = &Chain{Rules: []string{
		"ct state established,related accept",
		"iifname " + pods + " jump " + ChainPodEgress,
		"oifname " + pods + " jump " + ChainPodIngress,
	}}
	p.Chains[ChainInput] = &Chain{Rules: []string{
		"ct state established,related accept",
		"iifname " + pods + " jump " + ChainPodEgress,
	}}
	ingress := &Chain{Comment: "policies of the destination pod"}
	egress := &Chain{Comment: "policies of the source pod"}
	policies = slices.Clone(policies)
	SortPolicies(policies)
	podPolicies := slices.DeleteFunc(slices.Clone(policies), func(p *Policy) bool { return p.PreDNAT || p.DoNotTrack })
	if len(podPolicies) > 0 {
		// No window: while a policy exists, a local pod the engine does not
		// know yet (its IP not yet in the API) gets no traffic through;
		// the node's own traffic (output hook) is not filtered.
		ingress.Rules = append(ingress.Rules, "ip daddr != @"+SetLocalPods+" counter drop")
		egress.Rules = append(egress.Rules, "ip saddr != @"+SetLocalPods+" counter drop",
			// Anti-spoofing (strict reverse path): a pod may only send
			// from the address routed to its own veth, so it cannot wear
			// another pod's policies.
			"fib saddr . iif oif missing counter drop")
	}
	clear := "meta mark set meta mark & " + allowUnmark
	ingress.Rules = append(ingress.Rules, clear)
	egress.Rules = append(egress.Rules, clear)
	for _, pol := range podPolicies {
		id := policyName(pol.ID)
		var selected []*Endpoint
		localIx.each(&pol.Selects, func(e *Endpoint) { selected = append(selected, e) })
		// Policies with the same selector share the set of selected pods.
		selKey := selectorsKey([]*Selector{&pol.Selects})
		selName := "l" + hash(selKey)
		if _, done := p.Sets[selName]; !done {
			sel := p.set(selName, typeAddr, false, truncate("local pods: "+selKey, 120))
			for _, e := range selected {
				sel.add(e.IP.String())
			}
			p.members[selName] = localMember(&pol.Selects, node)
		}
		for _, d := range []Direction{Ingress, Egress} {
			rules, applies := pol.Rules(d)
			if !applies {
				continue
			}
			chain, iso, disp, own, dir := id+"-in", isoIn, ingress, "ip daddr", 0
			if d == Egress {
				chain, iso, disp, own, dir = id+"-eg", isoEg, egress, "ip saddr", 1
			}
			isoSel[dir] = append(isoSel[dir], &pol.Selects)
			for _, e := range selected {
				iso.add(e.IP.String())
			}
			c := &Chain{Comment: fmt.Sprintf("%s %s", pol.ID, d)}
			for i, r := range rules {
				name := fmt.Sprintf("%s-%s%d", id, d[:1], i)
				if r.Calico != nil {
					c.Rules = append(c.Rules, cc.calicoRule(name, r, normalVerdicts)...)
					continue
				}
				c.Rules = append(c.Rules, compileRule(p, pol, d, name, r, selKey, selected, all, node)...)
			}
			p.Chains[chain] = c
			disp.Rules = append(disp.Rules,
				own+" @"+selName+" jump "+chain,
				"meta mark & "+allowMark+" != 0 "+clear+" return")
			if pol.Calico() {
				// Pass: the tier's later policies are skipped; the pod's
				// profile (its namespace's: allow) decides.
				disp.Rules = append(disp.Rules, "meta mark & "+passMark+" != 0 "+clear+" return")
			}
		}
	}
	ingress.Rules = append(ingress.Rules, "ip daddr @"+SetIngressIso+" counter drop")
	egress.Rules = append(egress.Rules, "ip saddr @"+SetEgressIso+" counter drop")
	p.Chains[ChainPodIngress] = ingress
	p.Chains[ChainPodEgress] = egress
	cc.hosts(in, policies)
	return p
}

// compileRule returns the nft rules of one policy rule; name prefixes its
// sets. The peer is the source for ingress, the destination for egress;
// named ports resolve on the destination pod: a selected pod for
// ingress, any pod for egress.
func compileRule(p *Program, pol *Policy, d Direction, name string, r Rule, selKey string, selected []*Endpoint, all *index, node string) []string {
	peer := "ip saddr"
	if d == Egress {
		peer = "ip daddr"
	}
	peerMatches := []string{""}
	if r.Peers != nil {
		peerMatches = nil
		var selectors []*Selector
		var ranges []Range
		for _, pr := range r.Peers {
			if pr.Selector != nil {
				selectors = append(selectors, pr.Selector)
			}
			ranges = append(ranges, pr.Ranges...)
		}
		// One set per distinct selector, shared by every rule and policy
		// naming it (as Calico's IP sets): a pod change touches few sets.
		seen := map[string]bool{}
		for _, sel := range selectors {
			key := selectorsKey([]*Selector{sel})
			if seen[key] {
				continue
			}
			seen[key] = true
			setName := "s" + hash(key)
			if _, done := p.Sets[setName]; !done {
				s := p.set(setName, typeAddr, false, truncate("pods: "+key, 120))
				all.each(sel, func(e *Endpoint) { s.add(e.IP.String()) })
				p.members[setName] = selectorMember(sel)
			}
			peerMatches = append(peerMatches, peer+" @"+setName+" ")
		}
		if rs := mergeRanges(ranges); len(rs) > 0 {
			s := p.set(name+"-nets", typeAddr, true, fmt.Sprintf("%s %s ipBlocks", pol.ID, d))
			for _, rg := range rs {
				if rg.From == rg.To {
					s.add(rg.From.String())
				} else {
					s.add(rg.From.String() + "-" + rg.To.String())
				}
			}
			peerMatches = append(peerMatches, peer+" @"+name+"-nets ")
		}
	}
	portMatches := []string{""}
	if r.Ports != nil {
		portMatches = nil
		var named []Port
		for _, pt := range r.Ports {
			switch {
			case pt.Name != "":
				named = append(named, pt)
			case pt.Port == 0:
				portMatches = append(portMatches, "meta l4proto "+pt.Protocol+" ")
			case pt.EndPort > pt.Port:
				portMatches = append(portMatches, fmt.Sprintf("meta l4proto %s th dport %d-%d ", pt.Protocol, pt.Port, pt.EndPort))
			default:
				portMatches = append(portMatches, fmt.Sprintf("meta l4proto %s th dport %d ", pt.Protocol, pt.Port))
			}
		}
		if len(named) > 0 {
			// Shared by rules naming the same ports on the same pods: for
			// ingress the policy's selected pods, for egress any pod.
			var names []string
			for _, n := range named {
				names = append(names, n.Protocol+"/"+n.Name)
			}
			sort.Strings(names)
			key := "egress " + strings.Join(names, ",")
			if d == Ingress {
				key = "ingress " + strings.Join(names, ",") + " on " + selKey
			}
			npName := "n" + hash(key)
			portMatches = append(portMatches, "ip daddr . meta l4proto . th dport @"+npName+" ")
			if _, done := p.Sets[npName]; done {
				named = nil
			}
			s := p.set(npName, typeAddrPort, false, truncate("named ports: "+key, 120))
			if named != nil {
				if d == Ingress {
					p.members[npName] = namedPortMember(named, localMember(&pol.Selects, node))
				} else {
					p.members[npName] = namedPortMember(named, nil)
				}
			}
			for _, want := range named {
				dst := selected
				if d == Egress {
					dst = all.byPort[want.Name]
				}
				for _, e := range dst {
					for _, np := range e.Ports {
						if np.Name == want.Name && np.Protocol == want.Protocol {
							s.add(e.IP.String(), np.Protocol, fmt.Sprint(np.Port))
						}
					}
				}
			}
		}
	}
	verdict := "meta mark set meta mark | " + allowMark + " return"
	if r.Action == Deny {
		verdict = "counter drop"
	}
	var out []string
	for _, pm := range peerMatches {
		for _, po := range portMatches {
			out = append(out, pm+po+verdict)
		}
	}
	return out
}

// policyName is the short, stable nft name of a policy ID.
func policyName(id string) string { return "p" + hash(id) }

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:5])
}

// selectorsKey is the canonical text of a union of selectors.
func selectorsKey(sels []*Selector) string {
	parts := make([]string, 0, len(sels))
	for _, s := range sels {
		ns, pods := "*", "*"
		if s.Namespaces != nil {
			ns = "{" + s.Namespaces.String() + "}"
		}
		if s.Namespace != "" {
			ns = s.Namespace
		}
		if s.Pods != nil {
			pods = "{" + s.Pods.String() + "}"
		}
		parts = append(parts, "ns "+ns+" pods "+pods)
	}
	sort.Strings(parts)
	return strings.Join(slices.Compact(parts), " | ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
