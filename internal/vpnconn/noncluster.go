package vpnconn

import (
	"fmt"
	"net/netip"
	"strings"
)

// checkNonCluster reads localNonClusterSubnet (the chart's): subnets
// outside the cluster (an on-premises LAN behind the workers, say) that
// the remote reaches through the tunnel. As the chart, the gateway node
// masquerades the remote's traffic to them, so their hosts answer the
// node, which they reach, and the answer goes back into the tunnel.
// Each must lie inside local.subnet (kernel-libipsec routes answers
// into the tunnel only from the local traffic selector, and the remote
// accepts only those) and stay clear of the pod and service ranges and
// of the remote's subnets. Whether a worker's own subnet is listed is
// the server's check (it knows the nodes).
func (p *Plan) checkNonCluster(spec Spec) []error {
	v := strings.NewReplacer("\n", ",", " ", "").Replace(spec.LocalNonClusterSubnet)
	if strings.Trim(v, ",") == "" {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	nets, err := prefixList("localNonClusterSubnet", v)
	if err != nil {
		return []error{err}
	}
	for _, n := range nets {
		ok := true
		if !containedIn(n, p.LocalTS) {
			bad("localNonClusterSubnet %s is outside local.subnet (%s): add it to local.subnet, as the chart asks; the remote only reaches local.subnet", n, joinPrefixes(p.LocalTS))
			ok = false
		}
		for _, c := range p.ClusterRanges {
			if n.Overlaps(c) {
				bad("localNonClusterSubnet %s overlaps the cluster range %s: list only subnets outside the cluster (the pod and service ranges are reached without NAT)", n, c)
				ok = false
			}
		}
		for _, r := range append(append([]netip.Prefix(nil), p.RemoteTS...), p.Routed...) {
			if n.Overlaps(r) {
				bad("localNonClusterSubnet %s overlaps the remote subnet %s: list only local subnets", n, r)
				ok = false
				break
			}
		}
		if ok {
			p.NonCluster = append(p.NonCluster, n)
		}
	}
	return errs
}
