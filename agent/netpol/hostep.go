package netpol

import (
	"fmt"
	"slices"
	"strings"
)

// Base chains of host endpoint policy (besides input and forward): the
// host's own outgoing traffic, pre-DNAT policy (prerouting, before
// kube-proxy's DNAT at dstnat) and untracked policy (raw priority,
// before conntrack).
const (
	ChainOutput     = "output"
	ChainPreDNAT    = "prerouting-pre-dnat"
	ChainRawPre     = "raw-prerouting"
	ChainRawOutput  = "raw-output"
	failsafeComment = "failsafe: never cut by host endpoint policy"
)

// Failsafe is the traffic host endpoint policy never cuts (Calico's
// failsafe ports): inbound by destination port, outbound by destination
// port, and whole protocols (pod network encapsulation) both ways.
type Failsafe struct {
	InTCP, InUDP, OutTCP, OutUDP []int
	Protocols                    []string
}

// DefaultFailsafe is Calico's failsafe list (SSH 22, DHCP 67/68, BGP 179,
// etcd 2379/2380, Typha 5473, the API 6443, 6666/6667) plus what iks's
// nodes need of each other: DNS 53 out, the master tunnel 8132, the
// kubelet 10250, VXLAN 4789 and IP-in-IP.
var DefaultFailsafe = Failsafe{
	InTCP:     []int{22, 179, 2379, 2380, 5473, 6443, 6666, 6667, 8132, 10250},
	InUDP:     []int{68, 4789},
	OutTCP:    []int{53, 179, 2379, 2380, 5473, 6443, 6666, 6667, 8132, 10250},
	OutUDP:    []int{53, 67, 4789},
	Protocols: []string{"4"},
}

func (f *Failsafe) rules(in bool) []string {
	tcp, udp := f.OutTCP, f.OutUDP
	if in {
		tcp, udp = f.InTCP, f.InUDP
	}
	var out []string
	for _, x := range []struct {
		proto string
		ports []int
	}{{"tcp", tcp}, {"udp", udp}} {
		if len(x.ports) > 0 {
			out = append(out, fmt.Sprintf("meta l4proto %s th dport { %s } accept comment %q", x.proto, ints(x.ports), failsafeComment))
		}
	}
	if len(f.Protocols) > 0 {
		out = append(out, fmt.Sprintf("meta l4proto { %s } accept comment %q", strings.Join(f.Protocols, ", "), failsafeComment))
	}
	return out
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// HostPolicies are the policies that apply to one host endpoint, by kind
// and direction, in order.
type HostPolicies struct {
	In, Out, FwdIn, FwdOut, PreDNAT, UntrackedIn, UntrackedOut []*Policy
}

// ApplyingToHost returns, in order, the policies that apply to h;
// sorted is in SortPolicies order.
func ApplyingToHost(sorted []*Policy, h *HostEndpoint) HostPolicies {
	var hp HostPolicies
	for _, pol := range sorted {
		if !pol.Global || !selectsHost(&pol.Selects, h) {
			continue
		}
		switch {
		case pol.PreDNAT:
			if pol.AppliesIngress {
				hp.PreDNAT = append(hp.PreDNAT, pol)
			}
		case pol.DoNotTrack:
			if pol.AppliesIngress {
				hp.UntrackedIn = append(hp.UntrackedIn, pol)
			}
			if pol.AppliesEgress {
				hp.UntrackedOut = append(hp.UntrackedOut, pol)
			}
		default:
			if pol.AppliesIngress {
				hp.In = append(hp.In, pol)
				if pol.ApplyOnForward {
					hp.FwdIn = append(hp.FwdIn, pol)
				}
			}
			if pol.AppliesEgress {
				hp.Out = append(hp.Out, pol)
				if pol.ApplyOnForward {
					hp.FwdOut = append(hp.FwdOut, pol)
				}
			}
		}
	}
	return hp
}

// hosts adds the chains of in.Node's host endpoints. Traffic to the host
// through a host endpoint's interface (input) and from it (output) is
// denied unless a policy allows it, failsafe traffic apart; forwarded
// traffic only when an applyOnForward policy applies in that direction.
// Pre-DNAT and untracked policies have no default drop.
func (c *compiler) hosts(in *Input, sorted []*Policy) {
	fs := in.Failsafe
	if fs == nil {
		fs = &DefaultFailsafe
	}
	var mine []*HostEndpoint
	for _, h := range in.HostEndpoints {
		if h.Node == in.Node && h.Interface != "" {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		return
	}
	slices.SortFunc(mine, func(a, b *HostEndpoint) int { return strings.Compare(a.Name, b.Name) })
	p := c.p
	base := map[string]*Chain{
		ChainOutput:    {Rules: []string{"ct state established,related accept", "meta mark & " + untrackedMark + " != 0 accept"}},
		ChainPreDNAT:   {Rules: []string{"ct state established,related accept", "meta mark & " + untrackedMark + " != 0 accept"}},
		ChainRawPre:    {},
		ChainRawOutput: {},
	}
	// Forwarded and input traffic a doNotTrack policy allowed.
	fwd, input := p.Chains[ChainForward], p.Chains[ChainInput]
	var fwdHost, inputHost []string
	fwdHost = append(fwdHost, "meta mark & "+untrackedMark+" != 0 accept")
	inputHost = append(inputHost, "meta mark & "+untrackedMark+" != 0 accept")
	for _, h := range mine {
		hp := ApplyingToHost(sorted, h)
		id := "h" + hash(h.Name)
		iif, oif := ifMatch("iifname", h.Interface, in.VethPrefix), ifMatch("oifname", h.Interface, in.VethPrefix)
		comment := fmt.Sprintf("host endpoint %s (%s on %s)", h.Name, h.Interface, h.Node)

		inChain := &Chain{Comment: comment + " ingress", Rules: fs.rules(true)}
		inChain.Rules = append(inChain.Rules, c.hostDispatch(hp.In, Ingress, "accept")...)
		inChain.Rules = append(inChain.Rules, "counter drop")
		p.Chains[id+"-in"] = inChain
		inputHost = append(inputHost, iif+" jump "+id+"-in")

		outChain := &Chain{Comment: comment + " egress", Rules: fs.rules(false)}
		outChain.Rules = append(outChain.Rules, c.hostDispatch(hp.Out, Egress, "accept")...)
		outChain.Rules = append(outChain.Rules, "counter drop")
		p.Chains[id+"-out"] = outChain
		base[ChainOutput].Rules = append(base[ChainOutput].Rules, oif+" jump "+id+"-out")

		if len(hp.FwdIn) > 0 {
			ch := &Chain{Comment: comment + " forwarded ingress", Rules: c.hostDispatch(hp.FwdIn, Ingress, "return")}
			p.Chains[id+"-fwd-in"] = &Chain{Comment: ch.Comment, Rules: append(ch.Rules, "counter drop")}
			fwdHost = append(fwdHost, iif+" jump "+id+"-fwd-in")
		}
		if len(hp.FwdOut) > 0 {
			ch := &Chain{Comment: comment + " forwarded egress", Rules: c.hostDispatch(hp.FwdOut, Egress, "return")}
			p.Chains[id+"-fwd-out"] = &Chain{Comment: ch.Comment, Rules: append(ch.Rules, "counter drop")}
			fwdHost = append(fwdHost, oif+" jump "+id+"-fwd-out")
		}
		if len(hp.PreDNAT) > 0 {
			ch := &Chain{Comment: comment + " pre-DNAT", Rules: fs.rules(true)}
			for _, pol := range hp.PreDNAT {
				ch.Rules = append(ch.Rules, "jump "+c.directChain(pol, Ingress, "pre", preDNATVerdicts))
			}
			p.Chains[id+"-pre"] = ch
			base[ChainPreDNAT].Rules = append(base[ChainPreDNAT].Rules, iif+" jump "+id+"-pre")
		}
		for _, u := range []struct {
			pols      []*Policy
			d         Direction
			tag, base string
			match     string
			inbound   bool
		}{{hp.UntrackedIn, Ingress, "ut-in", ChainRawPre, iif, true}, {hp.UntrackedOut, Egress, "ut-out", ChainRawOutput, oif, false}} {
			if len(u.pols) == 0 {
				continue
			}
			ch := &Chain{Comment: comment + " untracked " + string(u.d), Rules: fs.rules(u.inbound)}
			for _, pol := range u.pols {
				ch.Rules = append(ch.Rules, "jump "+c.directChain(pol, u.d, u.tag, untrackedVerdicts))
			}
			p.Chains[id+"-"+u.tag] = ch
			base[u.base].Rules = append(base[u.base].Rules, u.match+" jump "+id+"-"+u.tag)
		}
	}
	// The host endpoints' jumps go right after the established rule.
	fwd.Rules = slices.Insert(fwd.Rules, 1, fwdHost...)
	input.Rules = slices.Insert(input.Rules, 1, inputHost...)
	for name, ch := range base {
		if len(ch.Rules) > 0 {
			p.Chains[name] = ch
		}
	}
}

// hostDispatch jumps to each policy's (shared) chain; an Allow ends in
// onAllow (accept, or return to go on with pod policy for forwarded
// traffic), a Pass in a drop (host endpoints have no profile).
func (c *compiler) hostDispatch(pols []*Policy, d Direction, onAllow string) []string {
	clear := "meta mark set meta mark & " + allowUnmark
	var out []string
	for _, pol := range pols {
		chain := policyName(pol.ID) + "-in"
		if d == Egress {
			chain = policyName(pol.ID) + "-eg"
		}
		out = append(out, "jump "+chain,
			"meta mark & "+allowMark+" != 0 "+clear+" "+onAllow,
			"meta mark & "+passMark+" != 0 "+clear+" counter drop")
	}
	return out
}

// directChain builds (once) the chain of a pre-DNAT or untracked policy:
// its rules with verdicts that act at once.
func (c *compiler) directChain(pol *Policy, d Direction, tag string, v verdicts) string {
	name := policyName(pol.ID) + "-" + tag
	if _, done := c.p.Chains[name]; done {
		return name
	}
	rules, _ := pol.Rules(d)
	ch := &Chain{Comment: fmt.Sprintf("%s %s (%s)", pol.ID, d, tag)}
	for i, r := range rules {
		if r.Calico != nil {
			ch.Rules = append(ch.Rules, c.calicoRule(fmt.Sprintf("%s-%s%d", name, d[:1], i), r, v)...)
		}
	}
	c.p.Chains[name] = ch
	return name
}

// ifMatch matches a host endpoint's interface; "*" is every interface
// but loopback and the pods' veths.
func ifMatch(key, iface, vethPrefix string) string {
	if iface == "*" {
		return fmt.Sprintf("%s != \"lo\" %s != \"%s*\"", key, key, vethPrefix)
	}
	return fmt.Sprintf("%s %q", key, iface)
}
