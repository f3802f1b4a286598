package vpnconn

import (
	"fmt"
	"strings"
)

// The chart's local.id variables, resolved by the gateway when it
// starts (cmd/iks-vpn).
const (
	// IDNodePublicIP is the public address of the gateway's node.
	IDNodePublicIP = "%nodePublicIP"
	// IDLoadBalancerIP is the connection's load balancer IP
	// (loadBalancerIP, or zoneLoadBalancer's IP of the gateway's zone).
	IDLoadBalancerIP = "%loadBalancerIP"
)

// checkIdentity checks local.id's variables (after the load balancer
// options); any other %-word but %any is refused rather than sent to
// the remote as a literal identity. local.zoneSubnet is refused: it
// needs a traffic selector per zone, which iks does not build.
func (p *Plan) checkIdentity(spec Spec) []error {
	var errs []error
	switch id := p.LocalID; {
	case id == IDLoadBalancerIP:
		if !p.LoadBalancerIP.IsValid() && len(p.ZoneLB) == 0 {
			errs = append(errs, fmt.Errorf("local.id %s needs loadBalancerIP or zoneLoadBalancer: set one, or give local.id as a string or IP", id))
		}
	case id == IDNodePublicIP, id == "%any":
	case strings.HasPrefix(id, "%"):
		errs = append(errs, fmt.Errorf("local.id %q is not a variable iks knows: use a string or IP, %s (the gateway node's public address) or %s", id, IDNodePublicIP, IDLoadBalancerIP))
	}
	if spec.Local.ZoneSubnet.IsSet() || strings.Contains(spec.Local.Subnet, "%zoneSubnet") {
		errs = append(errs, fmt.Errorf("local.zoneSubnet (and local.subnet %%zoneSubnet) is not supported: give local.subnet as CIDRs (for one source address per zone, run a connection per zone with zoneSelector and enableSingleSourceIP)"))
	}
	return errs
}
