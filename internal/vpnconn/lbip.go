package vpnconn

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
)

// checkLoadBalancer reads loadBalancerIP and connectUsingLoadBalancerIP.
// As the chart, "auto" (the default) connects from the load balancer IP
// when one is set and the cluster initiates (ipsec.auto start). Whether
// the IP is a free one of the portable subnets is the server's check
// (it knows the pools and the Services).
func (p *Plan) checkLoadBalancer(spec Spec) []error {
	errs := p.checkZoneLB(spec)
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if v := spec.LoadBalancerIP; v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			bad("loadBalancerIP %q: give an IPv4 address of a portable subnet", v)
		} else {
			p.LoadBalancerIP = a
		}
	}
	switch spec.ConnectUsingLoadBalancerIP {
	case "", "auto":
		p.ConnectUsingLB = (p.LoadBalancerIP.IsValid() || len(p.ZoneLB) > 0) && p.Auto == "start"
	case "true":
		p.ConnectUsingLB = true
		if spec.LoadBalancerIP == "" && len(p.ZoneLB) == 0 {
			bad("connectUsingLoadBalancerIP true needs loadBalancerIP or zoneLoadBalancer: set a free IP of a portable subnet, or use auto or false")
		}
	case "false":
	default:
		bad("connectUsingLoadBalancerIP %q: use auto, true or false", spec.ConnectUsingLoadBalancerIP)
	}
	return errs
}

// Flag is a chart option written auto, true or false, quoted or not
// (Helm users write connectUsingLoadBalancerIP: true).
type Flag string

// UnmarshalJSON accepts a string or a boolean.
func (f *Flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decode flag: %w", err)
	}
	switch v := v.(type) {
	case bool:
		*f = Flag(strconv.FormatBool(v))
	case string:
		*f = Flag(v)
	case nil:
		*f = ""
	default:
		return fmt.Errorf("flag %s: write auto, true or false", b)
	}
	return nil
}
