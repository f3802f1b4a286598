package lbspeaker

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
)

// node is a dual-homed node with both sides on 10.95.0.0/16 (one
// interface), as its agent publishes it.
func node(name string, ready bool, labels map[string]string) *corev1.Node {
	return sidedNode(name, ready, labels, "10.95.1.5/16", "10.95.1.5/16")
}

func sidedNode(name string, ready bool, labels map[string]string, private, public string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	ann := map[string]string{topology.AnnotationPrivateCIDR: private}
	if public != "" {
		ann[topology.AnnotationPublicCIDR] = public
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: ann},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func lbService(name, ip string, local bool) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}}}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return s
}

func TestTargetsAndEligibility(t *testing.T) {
	pub, _ := lbpool.Parse(lbpool.Public, "", "10.95.1.64/29@vlan=11")
	priv, _ := lbpool.Parse(lbpool.Private, "", "10.95.1.80/29")
	svcs := []*corev1.Service{
		lbService("web", "10.95.1.68", false),
		lbService("local", "10.95.1.84", true),
		lbService("privweb", "10.95.1.85", false),
		lbService("foreign", "192.0.2.9", false), // not ours
		lbService("alb", "10.95.1.67", false),    // the ALB IP is not a service IP
	}
	eps := []*discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "local-x", Labels: map[string]string{discoveryv1.LabelServiceName: "local"}},
		Endpoints: []discoveryv1.Endpoint{
			{NodeName: ptr.To("w1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{NodeName: ptr.To("w2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}}
	ts := targets(svcs, eps, []lbpool.Subnet{pub, priv})
	if len(ts) != 3 {
		t.Fatalf("targets %v, want the three pool service IPs", ts)
	}
	// The ALB IP is announced for the ALB's own Service only.
	albSvc := lbService("public-cr1-alb1", "10.95.1.67", false)
	albSvc.Namespace, albSvc.Labels = "kube-system", map[string]string{lbpool.LabelALB: "public-cr1-alb1"}
	if got := targets(append(svcs, albSvc), eps, []lbpool.Subnet{pub, priv}); len(got) != 4 || got[netip.MustParseAddr("10.95.1.67")].Service != "kube-system/public-cr1-alb1" {
		t.Errorf("with the ALB service, targets %v, want the ALB IP held by kube-system/public-cr1-alb1", got)
	}
	web, local := ts[netip.MustParseAddr("10.95.1.68")], ts[netip.MustParseAddr("10.95.1.84")]
	privWeb := ts[netip.MustParseAddr("10.95.1.85")]
	w1 := node("w1", true, map[string]string{"publicVLAN": "11"})
	w2 := node("w2", true, map[string]string{"publicVLAN": "12"})
	down := node("w3", false, map[string]string{"publicVLAN": "11"})
	excluded := node("w4", true, map[string]string{"publicVLAN": "11", LabelExcludeLB: ""})
	privOnly := sidedNode("w5", true, map[string]string{"publicVLAN": "11"}, "10.95.1.6/24", "")
	elsewhere := sidedNode("w6", true, nil, "10.96.1.6/24", "")
	for _, c := range []struct {
		n    *corev1.Node
		t    target
		want bool
	}{
		{w1, web, true}, {w2, web, false}, {down, web, false}, {excluded, web, false},
		{w1, local, true}, {w2, local, false}, // w2's endpoint is not ready
		{privOnly, web, false}, {privOnly, privWeb, true}, // no public side, whatever its labels say
		{elsewhere, privWeb, false}, {w2, privWeb, true}, // private side on another network
	} {
		if got := eligible(c.n, c.t); got != c.want {
			t.Errorf("eligible(%s, %s) = %v, want %v", c.n.Name, c.t.Service, got, c.want)
		}
	}
	if r := rank("w2", []*corev1.Node{w1, w2}, web); r != -1 {
		t.Errorf("ineligible node ranked %d", r)
	}
}

func TestRankSpreadsIPsAcrossNodes(t *testing.T) {
	pub, _ := lbpool.Parse(lbpool.Public, "", "10.95.0.0/24")
	nodes := []*corev1.Node{node("a", true, nil), node("b", true, nil), node("c", true, nil)}
	first := map[string]int{}
	for _, ip := range pub.ServiceIPs() {
		tg := target{IP: ip, Subnet: pub}
		ranks := map[int]bool{}
		for _, n := range nodes {
			r := rank(n.Name, nodes, tg)
			ranks[r] = true
			if r == 0 {
				first[n.Name]++
			}
		}
		if len(ranks) != 3 || !ranks[0] || !ranks[2] {
			t.Fatalf("ranks for %s are not a permutation of 0..2: %v", ip, ranks)
		}
	}
	for _, n := range nodes {
		if first[n.Name] < 50 { // 252 IPs over 3 nodes: ~84 each
			t.Errorf("node %s preferred for only %d of 252 IPs: %v", n.Name, first[n.Name], first)
		}
	}
}
