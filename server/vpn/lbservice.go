package vpn

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/vpnconn"
)

// ServiceName is the name of a connection's LoadBalancer Service (the
// Deployment's name).
func ServiceName(conn string) string { return DeploymentName(conn) }

// lbService is the LoadBalancer Service of loadBalancerIP: the iks LB
// controller (server/lb) gives it that portable IP and a node's
// lb-speaker announces it; kube-proxy forwards UDP 500 and 4500 to the
// gateway (host network: the node's address). externalTrafficPolicy
// Local keeps the remote's address (IKE's NAT detection and the
// remote's identity by address need it) and makes the gateway's node the
// only one that may hold the IP, so the IP follows the gateway when it
// fails over and charon can send from it (connectUsingLoadBalancerIP).
func lbService(conn string, ip netip.Addr, owner metav1.OwnerReference) *corev1.Service {
	labels := map[string]string{AppLabel: AppValue, ConnLabel: conn}
	port := func(name string, n int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolUDP, Port: n, TargetPort: intstr.FromInt32(n)}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(conn), Namespace: vpnconn.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerIP:                ip.String(),
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyLocal,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      labels,
			Ports:                         []corev1.ServicePort{port("ike", 500), port("ike-natt", 4500)},
		},
	}
}

// lbIPProblem says why ip cannot be the connection's load balancer IP:
// outside the portable subnets, one of a subnet's reserved or ALB
// addresses, or held or asked for by another Service. own is the
// connection's Service (namespace/name).
func lbIPProblem(ip netip.Addr, subnets []lbpool.Subnet, svcs []corev1.Service, own string) error {
	s, ok := lbpool.Find(subnets, ip)
	if !ok {
		var names []string
		for _, s := range subnets {
			names = append(names, string(s.Kind)+" "+s.Prefix.String())
		}
		have := "the cluster has none: add one with --portable-public-subnet/--portable-private-subnet or a PortableSubnet resource"
		if len(names) > 0 {
			have = "they are " + strings.Join(names, ", ")
		}
		return fmt.Errorf("loadBalancerIP %s is outside the portable subnets (%s): give a free IP of one of them", ip, have)
	}
	if !s.IsServiceIP(ip) {
		ips := s.ServiceIPs()
		return fmt.Errorf("loadBalancerIP %s is reserved in the portable subnet %s (network, gateway or ALB address): give one of %s to %s",
			ip, s.Prefix, ips[0], ips[len(ips)-1])
	}
	for _, svc := range svcs {
		k := svc.Namespace + "/" + svc.Name
		if k == own {
			continue
		}
		wants := strings.TrimSpace(svc.Spec.LoadBalancerIP) == ip.String() || strings.TrimSpace(svc.Annotations[lbpool.AnnotationIP]) == ip.String()
		for _, in := range svc.Status.LoadBalancer.Ingress {
			wants = wants || in.IP == ip.String()
		}
		if wants && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			return fmt.Errorf("loadBalancerIP %s is taken by Service %s: give another free IP of the portable subnet %s (see `iks lb status`)", ip, k, s.Prefix)
		}
	}
	return nil
}
