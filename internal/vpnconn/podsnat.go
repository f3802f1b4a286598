package vpnconn

import (
	"fmt"
	"net/netip"
)

// checkPodSNAT applies the chart's enablePodSNAT (default auto): pod
// traffic to the remote takes the gateway node's address, for a
// local.subnet that leaves the pods out (the worker subnet, say; the
// remote then sees, and answers, the node). auto turns it on exactly
// then: when no local.subnet prefix holds the pod range, no
// localSubnetNAT maps pods and enableSingleSourceIP is off. The node's
// address must be inside local.subnet for the tunnel to carry it
// (kernel-libipsec drops other sources); the chart's test
// ping-remote-ip-2 asks the same of its users.
func (p *Plan) checkPodSNAT(spec Spec, pods netip.Prefix) []error {
	mapped := false
	for _, n := range p.LocalNAT {
		mapped = mapped || n.From.Overlaps(pods)
	}
	switch f := or(string(spec.EnablePodSNAT), DefaultEnablePodSNAT); f {
	case "auto":
		p.PodSNAT = pods.IsValid() && !containedIn(pods, p.LocalTS) && !mapped && !p.SingleSource.IsValid()
	case "true":
		p.PodSNAT = pods.IsValid()
		if p.SingleSource.IsValid() || mapped {
			return []error{fmt.Errorf("enablePodSNAT true with enableSingleSourceIP or a localSubnetNAT of the pod range: keep one way of hiding the pods")}
		}
	case "false":
	default:
		return []error{fmt.Errorf("enablePodSNAT %q: use auto (default: when local.subnet leaves the pod range out), true or false", f)}
	}
	if p.PodSNAT {
		p.PodSNATFrom = pods
	}
	return nil
}
