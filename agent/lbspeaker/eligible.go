package lbspeaker

import (
	"hash/fnv"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/iks-dev/iks/internal/lbpool"
)

// LabelExcludeLB is the upstream label that keeps a node out of
// LoadBalancer duty.
const LabelExcludeLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// target is one LoadBalancer IP to announce and what decides who may.
type target struct {
	IP      netip.Addr
	Service string // namespace/name
	Subnet  lbpool.Subnet
	Local   bool // externalTrafficPolicy: Local
	// LocalNodes are the nodes with a ready endpoint (for Local).
	LocalNodes map[string]bool
}

// targets lists the LoadBalancer IPs of services that are in the pools.
func targets(svcs []*corev1.Service, slices_ []*discoveryv1.EndpointSlice, subnets []lbpool.Subnet) map[netip.Addr]target {
	out := map[netip.Addr]target{}
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(in.IP)
			if err != nil {
				continue
			}
			sub, ok := lbpool.Find(subnets, ip)
			// The ALB address only for an ALB's own Service.
			albSvc := s.Namespace == "kube-system" && s.Labels[lbpool.LabelALB] != ""
			if !ok || !(sub.IsServiceIP(ip) || albSvc && ip == sub.ALBIP()) {
				continue
			}
			t := target{IP: ip, Service: s.Namespace + "/" + s.Name, Subnet: sub,
				Local: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
			if t.Local {
				t.LocalNodes = readyNodes(s, slices_)
			}
			out[ip] = t
		}
	}
	return out
}

// readyNodes returns the nodes with a ready endpoint of svc.
func readyNodes(svc *corev1.Service, eps []*discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, es := range eps {
		if es.Namespace != svc.Namespace || es.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for _, e := range es.Endpoints {
			if e.NodeName != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				out[*e.NodeName] = true
			}
		}
	}
	return out
}

// eligible reports whether node may announce t: Ready, not excluded,
// attached to the subnet's VLAN (and zone) on the subnet's side, and with a ready local endpoint for
// externalTrafficPolicy Local.
func eligible(node *corev1.Node, t target) bool {
	if node == nil || !nodeReady(node) {
		return false
	}
	if _, excluded := node.Labels[LabelExcludeLB]; excluded {
		return false
	}
	if !lbpool.Attached(node, t.Subnet) {
		return false
	}
	return !t.Local || t.LocalNodes[node.Name]
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rank is self's place (0 = preferred) among the eligible nodes for ip by
// rendezvous hashing, so different IPs prefer different nodes; -1 when
// self is not eligible.
func rank(self string, nodes []*corev1.Node, t target) int {
	type scored struct {
		name  string
		score uint64
	}
	var all []scored
	for _, n := range nodes {
		if eligible(n, t) {
			h := fnv.New64a()
			h.Write([]byte(n.Name + "/" + t.IP.String()))
			all = append(all, scored{n.Name, h.Sum64()})
		}
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	for i, s := range all {
		if s.name == self {
			return i
		}
	}
	return -1
}
