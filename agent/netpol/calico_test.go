package netpol

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// gnp parses a GlobalNetworkPolicy spec (ns "") or a namespaced Calico
// NetworkPolicy spec written in YAML.
func calicoPol(t *testing.T, ns, name, specYAML string) (*Policy, error) {
	t.Helper()
	var spec CalicoPolicySpec
	if err := yaml.UnmarshalStrict([]byte(specYAML), &spec); err != nil {
		t.Fatalf("spec: %v\n%s", err, specYAML)
	}
	return FromCalicoPolicy(ns, name, &spec)
}

func mustPol(t *testing.T, ns, name, specYAML string) *Policy {
	t.Helper()
	p, err := calicoPol(t, ns, name, specYAML)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCalicoPolicyRefused(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"selector: app = 'web'", "spec.selector: selector \"app = 'web'\""},
		{"ingress: [{action: Accept}]", `action "Accept": use Allow, Deny, Log or Pass`},
		{"preDNAT: true\napplyOnForward: true\negress: [{action: Allow}]", "a preDNAT policy has only ingress rules"},
		{"preDNAT: true\napplyOnForward: true\ntypes: [Egress]", "applies to ingress only"},
		{"preDNAT: true\ndoNotTrack: true\napplyOnForward: true", "both true"},
		{"doNotTrack: true", "applyOnForward must be true"},
		{"ingress: [{action: Deny, protocol: TCP, destination: {ports: ['32767:30000']}}]", `range "32767:30000" is upside down: write 30000:32767`},
		{"ingress: [{action: Deny, destination: {ports: [80]}}]", "ports need protocol TCP"},
		{"ingress: [{action: Deny, protocol: TCP, source: {ports: [http]}}]", "named ports are for the destination only"},
		{"ingress: [{action: Deny, protocol: TCP, destination: {notPorts: [http]}}]", "notPorts takes numbers and ranges"},
		{"ingress: [{action: Deny, source: {nets: [10.0.0.0/33]}}]", `source.nets: "10.0.0.0/33" is no CIDR`},
		{"ingress: [{action: Deny, protocol: ICMP, icmp: {code: 1}}]", "icmp.code needs icmp.type"},
		{"ingress: [{action: Deny, protocol: IGMPX}]", `protocol "IGMPX"`},
		{"ingress: [{action: Deny, protocol: TCP, destination: {ports: [70000]}}]", "outside 0..65535"},
		{"tier: security", "only the default tier"},
		{"types: [Both]", `"Both" is no policy type`},
		{"ingress: [{action: Allow, source: {selector: 'has(a'}}]", "spec.ingress[0]: source.selector"},
	} {
		_, err := calicoPol(t, "", "p", c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.spec, err, c.want)
		} else if !strings.Contains(err.Error(), "globalnetworkpolicy p") {
			t.Errorf("%q: error %v does not name the policy", c.spec, err)
		}
	}
	if _, err := calicoPol(t, "app", "p", "namespaceSelector: all()"); err == nil || !strings.Contains(err.Error(), "networkpolicy.projectcalico.org app/p: spec.namespaceSelector") {
		t.Errorf("namespaced namespaceSelector: %v", err)
	}
}

func TestCalicoPolicyDefaults(t *testing.T) {
	p := mustPol(t, "", "p", "egress: [{action: Allow}]")
	if p.AppliesIngress || !p.AppliesEgress || !math.IsInf(p.Order, 1) || !p.Global {
		t.Errorf("egress-only policy: ingress %v egress %v order %v global %v", p.AppliesIngress, p.AppliesEgress, p.Order, p.Global)
	}
	p = mustPol(t, "", "p", "order: 10")
	if !p.AppliesIngress || p.AppliesEgress || p.Order != 10 {
		t.Errorf("rule-less policy: ingress %v egress %v order %v", p.AppliesIngress, p.AppliesEgress, p.Order)
	}
	if r := mustPol(t, "", "p", "ingress: [{action: Allow, ipVersion: 6}]").Ingress; len(r) != 0 {
		t.Errorf("IPv6 rule kept: %+v", r)
	}
	ordered := []*Policy{mustPol(t, "", "none", ""), mustPol(t, "", "b", "order: 5"), mustPol(t, "", "a", "order: 5"), mustPol(t, "", "first", "order: 1")}
	SortPolicies(ordered)
	var ids []string
	for _, p := range ordered {
		ids = append(ids, p.ID)
	}
	if got := strings.Join(ids, ","); got != "gnp:first,gnp:a,gnp:b,gnp:none" {
		t.Errorf("order: %s", got)
	}
}

func ep(ns, name, ip, sa string, lbl map[string]string, nsLbl map[string]string, ports ...NamedPort) *Endpoint {
	return &Endpoint{Namespace: ns, Name: name, Node: node, IP: netip.MustParseAddr(ip), Labels: lbl, NamespaceLabels: nsLbl,
		ServiceAccount: sa, Ports: ports}
}

// chainRules returns the rules of the policy's chain for d.
func chainRules(t *testing.T, p *Program, pol *Policy, d Direction) []string {
	t.Helper()
	name := policyName(pol.ID) + "-in"
	if d == Egress {
		name = policyName(pol.ID) + "-eg"
	}
	c, ok := p.Chains[name]
	if !ok {
		t.Fatalf("no chain %s for %s", name, pol.ID)
	}
	return c.Rules
}

func hasRule(t *testing.T, rules []string, parts ...string) string {
	t.Helper()
	for _, r := range rules {
		ok := true
		for _, part := range parts {
			if !strings.Contains(r, part) {
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	t.Errorf("no rule with %q in\n%s", parts, strings.Join(rules, "\n"))
	return ""
}

// setOf returns the name of the set a rule matches after prefix
// ("ip saddr @" or, for the network sets' sets, "ip saddr @S").
func setOf(rule, prefix string) string {
	at := strings.Index(rule, prefix)
	if at < 0 {
		return ""
	}
	start := strings.LastIndex(rule[:at+len(prefix)], "@") + 1
	return strings.Fields(rule[start:])[0]
}

// calicoFixture is a policy with one rule of each kind, its pods and
// network sets.
func calicoFixture(t *testing.T) (*Policy, *Input) {
	eps := []*Endpoint{
		ep("app", "web", "172.30.0.2", "web-sa", map[string]string{"app": "web"}, map[string]string{"env": "prod"}, NamedPort{"http", "tcp", 8080}),
		ep("app", "cli", "172.30.0.3", "cli-sa", map[string]string{"role": "client"}, map[string]string{"env": "prod"}),
		ep("dev", "cli", "172.30.0.4", "default", map[string]string{"role": "client"}, map[string]string{"env": "dev"}),
	}
	AttachServiceAccounts(eps, nil)
	eps[1].SALabels = labels.Set{"team": "blue"}
	sets := []*NetworkSet{}
	for _, ns := range []struct {
		ns, name string
		nets     []string
	}{{"", "office", []string{"192.0.2.0/24"}}, {"app", "partners", []string{"198.51.100.7"}}} {
		s, err := FromNetworkSet(ns.ns, ns.name, map[string]string{"role": "client"}, &CalicoNetworkSetSpec{Nets: ns.nets})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
	}
	pol := mustPol(t, "", "web", `
order: 10
selector: app == 'web'
types: [Ingress, Egress]
ingress:
- action: Deny
  source: {nets: [10.0.0.0/8], notNets: [10.1.0.0/16]}
- action: Allow
  protocol: TCP
  destination: {ports: [80, "8000:8080", http]}
- action: Allow
  protocol: ICMP
  icmp: {type: 8, code: 0}
- action: Deny
  protocol: ICMP
  notICMP: {type: 8, code: 0}
- action: Log
- action: Pass
  protocol: 112
- action: Allow
  notProtocol: UDP
  source: {selector: role == 'client', namespaceSelector: env == 'prod'}
- action: Allow
  source: {serviceAccounts: {names: [cli-sa]}}
- action: Allow
  source: {serviceAccounts: {selector: team == 'blue'}}
- action: Deny
  source: {notSelector: role == 'client'}
- action: Allow
  protocol: UDP
  source: {ports: ["53"]}
  destination: {notPorts: [9999]}
egress:
- action: Allow
  destination: {selector: role == 'client'}
`)
	return pol, &Input{Policies: []*Policy{pol}, Endpoints: eps, NetworkSets: sets, Node: node, VethPrefix: "cali"}
}

func TestCalicoCompile(t *testing.T) {
	pol, input := calicoFixture(t)
	p := CompileInput(input)
	in := chainRules(t, p, pol, Ingress)
	r := hasRule(t, in, "ip saddr @", "ip saddr != @", "counter drop")
	wantElems(t, p, setOf(r, "ip saddr @"), "10.0.0.0-10.255.255.255")
	wantElems(t, p, setOf(r, "ip saddr != @"), "10.1.0.0-10.1.255.255")
	hasRule(t, in, "meta l4proto tcp th dport { 80, 8000-8080 } meta mark set meta mark | "+allowMark+" return")
	r = hasRule(t, in, "ip daddr . meta l4proto . th dport @", "meta l4proto tcp")
	wantElems(t, p, setOf(r, "th dport @"), "172.30.0.2 . tcp . 8080")
	hasRule(t, in, "meta l4proto icmp icmp type 8 icmp code 0 meta mark set")
	hasRule(t, in, "meta l4proto icmp icmp type != 8 counter drop")
	hasRule(t, in, "meta l4proto icmp icmp type 8 icmp code != 0 counter drop")
	hasRule(t, in, `log prefix "iks-policy web ingress: "`)
	hasRule(t, in, "meta l4proto 112 meta mark set meta mark | "+passMark+" return")
	// role == 'client' in prod namespaces: app/cli only (no network set:
	// the namespace selector leaves the global set out; partners' namespace
	// has no labels known here but app's).
	r = hasRule(t, in, "meta l4proto != udp ip saddr @s")
	wantElems(t, p, setOf(r, "ip saddr @"), "172.30.0.3")
	r = hasRule(t, in, "meta l4proto != udp", "ip saddr @S")
	wantElems(t, p, setOf(r, "ip saddr @S"), "198.51.100.7")
	sa := in[slices.IndexFunc(in, func(r string) bool { return strings.Contains(r, "ip saddr @s") && !strings.Contains(r, "l4proto") })]
	wantElems(t, p, setOf(sa, "ip saddr @"), "172.30.0.3")
	r = hasRule(t, in, "ip saddr != @s", "ip saddr != @S", "counter drop")
	wantElems(t, p, setOf(r, "ip saddr != @S"), "192.0.2.0-192.0.2.255", "198.51.100.7")
	hasRule(t, in, "meta l4proto udp", "th sport { 53 }", "th dport != { 9999 }", "meta mark set")
	// Egress: a global selector matches pods of every namespace and every
	// network set.
	r = hasRule(t, chainRules(t, p, pol, Egress), "ip daddr @S")
	wantElems(t, p, setOf(r, "ip daddr @S"), "192.0.2.0-192.0.2.255", "198.51.100.7")
	r = hasRule(t, chainRules(t, p, pol, Egress), "ip daddr @s")
	wantElems(t, p, setOf(r, "ip daddr @"), "172.30.0.3", "172.30.0.4")
	// Pass of a Calico policy: the pod dispatch lets it through.
	hasRule(t, p.Chains[ChainPodIngress].Rules, "meta mark & "+passMark+" != 0", "return")
}

func TestCalicoNamespacedPolicy(t *testing.T) {
	eps := []*Endpoint{
		ep("app", "web", "172.30.0.2", "", map[string]string{"app": "web"}, nil),
		ep("dev", "web", "172.30.0.5", "", map[string]string{"app": "web"}, nil),
		ep("app", "cli", "172.30.0.3", "", map[string]string{"role": "client"}, nil),
		ep("dev", "cli", "172.30.0.4", "", map[string]string{"role": "client"}, nil),
	}
	pol := mustPol(t, "app", "web", "selector: app == 'web'\ningress: [{action: Allow, source: {selector: role == 'client'}}]")
	p := CompileInput(&Input{Policies: []*Policy{pol}, Endpoints: eps, Node: node, VethPrefix: "cali"})
	if !pol.Selects.Matches(eps[0]) || pol.Selects.Matches(eps[1]) {
		t.Error("a namespaced Calico policy selects outside its namespace")
	}
	r := hasRule(t, chainRules(t, p, pol, Ingress), "ip saddr @s")
	wantElems(t, p, setOf(r, "ip saddr @"), "172.30.0.3")
	// Calico's labels: the namespace as a label.
	g := mustPol(t, "", "g", "selector: projectcalico.org/namespace == 'dev' && projectcalico.org/orchestrator == 'k8s'")
	if g.Selects.Matches(eps[0]) || !g.Selects.Matches(eps[1]) {
		t.Error("projectcalico.org/namespace not matched")
	}
}

func TestHostEndpointChains(t *testing.T) {
	heps := []*HostEndpoint{
		{Name: "n1-worker-public", Node: node, Interface: "eth1", Labels: labels.Set{LabelRole: RolePublic}, IPs: []netip.Addr{netip.MustParseAddr("169.1.1.1")}},
		{Name: "n1-worker-private", Node: node, Interface: "eth0", Labels: labels.Set{LabelRole: RolePrivate}},
		{Name: "n2-worker-public", Node: "n2", Interface: "eth1", Labels: labels.Set{LabelRole: RolePublic}, IPs: []netip.Addr{netip.MustParseAddr("169.1.1.2")}},
		{Name: "n1-all", Node: node, Interface: "*", Labels: labels.Set{"all": "yes"}},
	}
	deny := mustPol(t, "", "deny-nodeports", "order: 1100\npreDNAT: true\napplyOnForward: true\nselector: ibm.role == 'worker_public'\n"+
		"ingress: [{action: Deny, protocol: TCP, destination: {ports: ['30000:32767']}}, {action: Deny, protocol: UDP, destination: {ports: ['30000:32767']}}]")
	dnat := mustPol(t, "", "allow-node-port-dnat", "order: 1500\napplyOnForward: true\nselector: ibm.role == 'worker_public'\ningress: [{action: Allow, destination: {nets: [172.30.0.0/16]}}]")
	untracked := mustPol(t, "", "untracked", "order: 1\ndoNotTrack: true\napplyOnForward: true\nselector: has(all)\ningress: [{action: Allow, protocol: UDP, destination: {ports: [4000]}}]")
	peers := mustPol(t, "", "from-nodes", "selector: app == 'web'\ningress: [{action: Allow, source: {selector: ibm.role == 'worker_public'}}]")
	p := CompileInput(&Input{Policies: []*Policy{deny, dnat, untracked, peers}, HostEndpoints: heps, Node: node, VethPrefix: "cali"})

	pub, priv, all := "h"+hash("n1-worker-public"), "h"+hash("n1-worker-private"), "h"+hash("n1-all")
	if _, ok := p.Chains["h"+hash("n2-worker-public")+"-in"]; ok {
		t.Error("another node's host endpoint programmed here")
	}
	hasRule(t, p.Chains[ChainPreDNAT].Rules, `iifname "eth1" jump `+pub+"-pre")
	pre := p.Chains[pub+"-pre"].Rules
	hasRule(t, pre, "meta l4proto tcp th dport { 22, 179,", "accept")
	hasRule(t, pre, "jump "+policyName(deny.ID)+"-pre")
	hasRule(t, p.Chains[policyName(deny.ID)+"-pre"].Rules, "meta l4proto tcp th dport { 30000-32767 } counter drop")
	if _, ok := p.Chains[priv+"-pre"]; ok {
		t.Error("pre-DNAT chain for the private side, which no pre-DNAT policy selects")
	}
	// Normal ingress: the public side's policies then a drop; the private
	// side has none: failsafe, then drop.
	in := p.Chains[pub+"-in"].Rules
	hasRule(t, in, "jump "+policyName(dnat.ID)+"-in")
	if in[len(in)-1] != "counter drop" {
		t.Errorf("public ingress does not end in a drop: %v", in)
	}
	if r := p.Chains[priv+"-in"].Rules; !strings.Contains(r[0], "failsafe") || r[len(r)-1] != "counter drop" {
		t.Errorf("private ingress without policy: %v", r)
	}
	hasRule(t, p.Chains[ChainInput].Rules, `iifname "eth0" jump `+priv+"-in")
	hasRule(t, p.Chains[ChainOutput].Rules, `oifname "eth1" jump `+pub+"-out")
	// Forwarded: only where an applyOnForward policy applies.
	hasRule(t, p.Chains[ChainForward].Rules, `iifname "eth1" jump `+pub+"-fwd-in")
	hasRule(t, p.Chains[pub+"-fwd-in"].Rules, "meta mark & "+allowMark+" != 0", "return")
	if _, ok := p.Chains[priv+"-fwd-in"]; ok {
		t.Error("forward chain for the private side, which no applyOnForward policy selects")
	}
	// Untracked: raw priority, notrack on Allow; "*" is every interface
	// but loopback and the pods'.
	hasRule(t, p.Chains[ChainRawPre].Rules, `iifname != "lo" iifname != "cali*" jump `+all+"-ut-in")
	hasRule(t, p.Chains[policyName(untracked.ID)+"-ut-in"].Rules, "meta l4proto udp th dport { 4000 } notrack")
	// A rule selecting host endpoints matches their addresses (any node).
	r := hasRule(t, chainRules(t, p, peers, Ingress), "ip saddr @S")
	wantElems(t, p, setOf(r, "ip saddr @S"), "169.1.1.1-169.1.1.2")

	hp := ApplyingToHost(sortedCopy(deny, dnat, untracked, peers), heps[0])
	if len(hp.PreDNAT) != 1 || len(hp.In) != 1 || len(hp.FwdIn) != 1 || len(hp.UntrackedIn) != 0 {
		t.Errorf("policies of the public side: %+v", hp)
	}
	// Without host endpoints on the node, no host chains at all.
	p = CompileInput(&Input{Policies: []*Policy{deny, dnat}, HostEndpoints: heps[2:3], Node: node, VethPrefix: "cali"})
	for _, c := range []string{ChainOutput, ChainPreDNAT, ChainRawPre, ChainRawOutput} {
		if _, ok := p.Chains[c]; ok {
			t.Errorf("base chain %s without host endpoints", c)
		}
	}
}

func sortedCopy(ps ...*Policy) []*Policy {
	SortPolicies(ps)
	return ps
}

func TestFromHostEndpointAndNetworkSet(t *testing.T) {
	if _, err := FromHostEndpoint("h", nil, &CalicoHostEndpointSpec{InterfaceName: "eth0"}); err == nil || !strings.Contains(err.Error(), "spec.node") {
		t.Errorf("no node: %v", err)
	}
	if _, err := FromHostEndpoint("h", nil, &CalicoHostEndpointSpec{Node: "n"}); err == nil || !strings.Contains(err.Error(), "interfaceName") {
		t.Errorf("no interface or IPs: %v", err)
	}
	if _, err := FromHostEndpoint("h", nil, &CalicoHostEndpointSpec{Node: "n", ExpectedIPs: []string{"x"}}); err == nil || !strings.Contains(err.Error(), `"x" is no address`) {
		t.Errorf("bad IP: %v", err)
	}
	s, err := FromNetworkSet("", "g", map[string]string{"a": "b"}, &CalicoNetworkSetSpec{Nets: []string{"10.0.0.0/24", "2001:db8::/32", "10.0.1.0/24"}})
	if err != nil || len(s.Nets) != 1 || s.Nets[0].To.String() != "10.0.1.255" || !s.Labels.Has("projectcalico.org/global") {
		t.Errorf("global network set: %+v %v", s, err)
	}
	if _, err := FromNetworkSet("ns", "n", nil, &CalicoNetworkSetSpec{Nets: []string{"10.0.0/8"}}); err == nil || !strings.Contains(err.Error(), "networkset ns/n") {
		t.Errorf("bad net: %v", err)
	}
}
