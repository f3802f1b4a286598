package netpol

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const node = "n1"

func pod(ns, name, nodeName, ip string, lbl map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func nsObj(name string, lbl map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func proto(p corev1.Protocol) *corev1.Protocol { return &p }

func portNum(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }

func portName(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }

func compileObjs(t *testing.T, pods []*corev1.Pod, nss []*corev1.Namespace, nps ...*networkingv1.NetworkPolicy) *Program {
	t.Helper()
	pols, eps := Translate(pods, nss, nps, func(err error) { t.Fatalf("translate: %v", err) })
	return Compile(pols, eps, node, "cali")
}

func elems(p *Program, set string) []string {
	s, ok := p.Sets[set]
	if !ok {
		return nil
	}
	out := sortedKeys(s.Elements)
	return out
}

func wantElems(t *testing.T, p *Program, set string, want ...string) {
	t.Helper()
	if got := elems(p, set); !slices.Equal(got, want) {
		t.Errorf("set %s = %v, want %v", set, got, want)
	}
}

// ruleSet is the first set rule i of chain names.
func ruleSet(t *testing.T, p *Program, chain string, i int) string {
	t.Helper()
	c, ok := p.Chains[chain]
	if !ok || len(c.Rules) <= i {
		t.Fatalf("chain %s has no rule %d", chain, i)
	}
	_, after, ok := strings.Cut(c.Rules[i], "@")
	if !ok {
		t.Fatalf("rule %q names no set", c.Rules[i])
	}
	return strings.Fields(after)[0]
}

// selSet is the set of pods the dispatch chain tests before jumping to
// policy chain.
func selSet(t *testing.T, p *Program, chain string) string {
	t.Helper()
	for _, disp := range []string{ChainPodIngress, ChainPodEgress} {
		for _, r := range p.Chains[disp].Rules {
			if strings.HasSuffix(r, " jump "+chain) {
				_, after, _ := strings.Cut(r, "@")
				return strings.Fields(after)[0]
			}
		}
	}
	t.Fatalf("no dispatch to %s", chain)
	return ""
}

func chainHas(t *testing.T, p *Program, chain string, want ...string) {
	t.Helper()
	c, ok := p.Chains[chain]
	if !ok {
		t.Fatalf("no chain %s; chains: %v", chain, sortedKeys(p.Chains))
	}
	for _, w := range want {
		if !slices.Contains(c.Rules, w) {
			t.Errorf("chain %s lacks rule %q; rules:\n%s", chain, w, strings.Join(c.Rules, "\n"))
		}
	}
}

var (
	pods = []*corev1.Pod{
		pod("app", "web-local", node, "172.30.0.2", map[string]string{"app": "web"},
			corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}),
		pod("app", "web-remote", "n2", "172.30.1.2", map[string]string{"app": "web"},
			corev1.ContainerPort{Name: "http", ContainerPort: 9090}),
		pod("app", "client", "n2", "172.30.1.3", map[string]string{"role": "client"}),
		pod("other", "client", "n2", "172.30.1.4", map[string]string{"role": "client"}),
		pod("other", "db", node, "172.30.0.5", map[string]string{"app": "db"}),
	}
	namespaces = []*corev1.Namespace{nsObj("app", map[string]string{"team": "a"}), nsObj("other", map[string]string{"team": "b"})}
)

func TestNoPolicyNoDrop(t *testing.T) {
	p := compileObjs(t, pods, namespaces)
	wantElems(t, p, SetLocalPods, "172.30.0.2", "172.30.0.5")
	for _, r := range p.Chains[ChainPodIngress].Rules {
		if strings.Contains(r, "!= @"+SetLocalPods) {
			t.Errorf("without policies unknown pods must not be dropped: %q", r)
		}
	}
	wantElems(t, p, SetIngressIso)
	chainHas(t, p, ChainForward, `ct state established,related accept`, `iifname "cali*" jump pod-egress`, `oifname "cali*" jump pod-ingress`)
}

func TestIngressPodSelectorAndPort(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "allow-client"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "client")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: portNum(80)}, {Protocol: proto(corev1.ProtocolUDP), Port: portNum(53), EndPort: ptr(int32(60))}},
			}}}}
	p := compileObjs(t, pods, namespaces, np)
	id := policyName("knp:app/allow-client")
	// Only the local web pod is a target; the peer is the client of the
	// policy's namespace only, wherever it runs.
	wantElems(t, p, selSet(t, p, id+"-in"), "172.30.0.2")
	wantElems(t, p, SetIngressIso, "172.30.0.2")
	wantElems(t, p, SetEgressIso)
	peers := ruleSet(t, p, id+"-in", 0)
	wantElems(t, p, peers, "172.30.1.3")
	chainHas(t, p, id+"-in",
		"ip saddr @"+peers+" meta l4proto tcp th dport 80 meta mark set meta mark | 0x00100000 return",
		"ip saddr @"+peers+" meta l4proto udp th dport 53-60 meta mark set meta mark | 0x00100000 return")
	chainHas(t, p, ChainPodIngress, "ip daddr != @local-pods counter drop", "ip daddr @"+selSet(t, p, id+"-in")+" jump "+id+"-in",
		"ip daddr @ingress-isolated counter drop")
	if _, ok := p.Chains[id+"-eg"]; ok {
		t.Error("an ingress-only policy got an egress chain")
	}
}

func ptr[T any](v T) *T { return &v }

func TestNamespaceSelectors(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "ns"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "a")}}},
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel("role", "client")}}},
			}}}
	p := compileObjs(t, pods, namespaces, np)
	id := policyName("knp:other/ns")
	wantElems(t, p, selSet(t, p, id+"-in"), "172.30.0.5")
	wantElems(t, p, ruleSet(t, p, id+"-in", 0), "172.30.0.2", "172.30.1.2", "172.30.1.3")
	wantElems(t, p, ruleSet(t, p, id+"-in", 1), "172.30.1.3", "172.30.1.4")
	// Another policy with the same peers shares the set.
	np2 := np.DeepCopy()
	np2.Name = "ns2"
	p = compileObjs(t, pods, namespaces, np, np2)
	if a, b := ruleSet(t, p, id+"-in", 0), ruleSet(t, p, policyName("knp:other/ns2")+"-in", 0); a != b {
		t.Errorf("same peers, different sets %s and %s", a, b)
	}
}

func TestIPBlockExcept(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "ipb"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/24", Except: []string{"10.0.0.128/25", "10.0.0.7/32"}}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.64/26"}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.1.1/32"}},
			}}}}}
	p := compileObjs(t, pods, namespaces, np)
	id := policyName("knp:app/ipb")
	wantElems(t, p, id+"-e0-nets", "10.0.0.0-10.0.0.6", "10.0.0.8-10.0.0.127", "192.168.1.1")
	if !p.Sets[id+"-e0-nets"].Interval {
		t.Error("ipBlock set is not an interval set")
	}
	wantElems(t, p, SetEgressIso, "172.30.0.2")
	wantElems(t, p, SetIngressIso)
	chainHas(t, p, id+"-eg", "ip daddr @"+id+"-e0-nets meta mark set meta mark | 0x00100000 return")
	wantElems(t, p, selSet(t, p, id+"-eg"), "172.30.0.2")
	chainHas(t, p, ChainPodEgress, "ip saddr @egress-isolated counter drop")
}

func TestNamedPorts(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "named"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: portName("http")}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
				{Port: portName("http")}, {Protocol: proto(corev1.ProtocolSCTP)}}}},
		}}
	p := compileObjs(t, pods, namespaces, np)
	id := policyName("knp:app/named")
	// Ingress: resolved on the selected (local) pods; egress: on any pod.
	inNP := ruleSet(t, p, id+"-in", 0)
	wantElems(t, p, inNP, "172.30.0.2 . tcp . 8080")
	wantElems(t, p, ruleSet(t, p, id+"-eg", 1), "172.30.0.2 . tcp . 8080", "172.30.1.2 . tcp . 9090")
	chainHas(t, p, id+"-in", "ip daddr . meta l4proto . th dport @"+inNP+" meta mark set meta mark | 0x00100000 return")
	chainHas(t, p, id+"-eg", "meta l4proto sctp meta mark set meta mark | 0x00100000 return")
}

func TestDefaultDenyAndStacked(t *testing.T) {
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}}}
	allow := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "allow"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
	p := compileObjs(t, pods, namespaces, deny, allow)
	d, a := policyName("knp:app/deny"), policyName("knp:app/allow")
	if c := p.Chains[d+"-in"]; c == nil || len(c.Rules) != 0 {
		t.Errorf("default deny chain = %+v, want an empty chain", c)
	}
	chainHas(t, p, a+"-in", "meta mark set meta mark | 0x00100000 return")
	// Both dispatched, allow (sorted by ID) first.
	rules := p.Chains[ChainPodIngress].Rules
	ia, id := slices.Index(rules, "ip daddr @"+selSet(t, p, a+"-in")+" jump "+a+"-in"), slices.Index(rules, "ip daddr @"+selSet(t, p, d+"-in")+" jump "+d+"-in")
	if ia < 0 || id < 0 || ia > id {
		t.Errorf("dispatch order wrong (allow %d, deny %d):\n%s", ia, id, strings.Join(rules, "\n"))
	}
}

func TestTranslateErrors(t *testing.T) {
	bad := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "bad"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: portNum(90), EndPort: ptr(int32(80))}}}}}}
	if _, err := FromNetworkPolicy(bad); err == nil || !strings.Contains(err.Error(), "endPort 80 is below port 90") ||
		!strings.Contains(err.Error(), "app/bad") {
		t.Errorf("upside-down range: %v", err)
	}
	var reported []error
	pols, _ := Translate(nil, nil, []*networkingv1.NetworkPolicy{bad}, func(err error) { reported = append(reported, err) })
	if len(pols) != 0 || len(reported) != 1 {
		t.Errorf("bad policy: %d policies, %d reported, want 0 and 1", len(pols), len(reported))
	}
}

func TestSkipsHostNetworkAndFinished(t *testing.T) {
	host := pod("app", "h", node, "10.0.0.1", nil)
	host.Spec.HostNetwork = true
	done := pod("app", "d", node, "172.30.0.9", nil)
	done.Status.Phase = corev1.PodSucceeded
	_, eps := Translate([]*corev1.Pod{host, done}, nil, nil, func(error) {})
	if len(eps) != 0 {
		t.Errorf("endpoints %v, want none", eps)
	}
}
