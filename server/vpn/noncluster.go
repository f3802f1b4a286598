package vpn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// checkNonClusterNodes refuses a localNonClusterSubnet holding a node's
// address (the chart skips the workers' subnet with a warning): the
// gateway would masquerade the remote's traffic to every node of that
// subnet, hiding the remote's address from NodePorts and host services
// that the remote reaches through local.subnet without NAT.
func (c *Controller) checkNonClusterNodes(ctx context.Context, p *vpnconn.Plan) error {
	if len(p.NonCluster) == 0 {
		return nil
	}
	nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	return nonClusterNodeProblem(p.NonCluster, nodes.Items)
}

func nonClusterNodeProblem(nets []netip.Prefix, nodes []corev1.Node) error {
	var errs []error
	for _, n := range nets {
		for _, node := range nodes {
			for _, a := range node.Status.Addresses {
				ip, err := netip.ParseAddr(a.Address)
				if err != nil || (a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP) || !n.Contains(ip) {
					continue
				}
				errs = append(errs, fmt.Errorf("localNonClusterSubnet %s holds node %s's address %s: list only subnets outside the cluster; "+
					"the workers' subnet is reached through local.subnet without NAT", n, node.Name, ip))
				break
			}
		}
	}
	return errors.Join(errs...)
}
