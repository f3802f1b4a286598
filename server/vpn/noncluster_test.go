package vpn

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNonClusterNodeProblem(t *testing.T) {
	node := func(name, ip string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}}}
	}
	nodes := []corev1.Node{node("w1", "10.0.0.5"), node("w2", "10.0.1.5")}
	lan := []netip.Prefix{netip.MustParsePrefix("192.168.60.0/24")}
	if err := nonClusterNodeProblem(lan, nodes); err != nil {
		t.Errorf("a LAN without nodes refused: %v", err)
	}
	err := nonClusterNodeProblem(append(lan, netip.MustParsePrefix("10.0.1.0/24")), nodes)
	if err == nil || !strings.Contains(err.Error(), "localNonClusterSubnet 10.0.1.0/24 holds node w2's address 10.0.1.5: list only subnets outside the cluster") ||
		strings.Contains(err.Error(), "w1") {
		t.Errorf("workers' subnet: %v", err)
	}
}
