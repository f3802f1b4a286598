package vpnconn

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/iks-dev/iks/internal/topology"
)

// checkZoneLB reads zoneLoadBalancer (the chart's): the load balancer
// IP of each zone, as "ZONE=IP" lines (the chart's form) or a map. The
// server gives each zone a Service (iks-vpn-NAME-ZONE) on its IP; the
// gateway uses the IP of its node's zone, as loadBalancerIP. Where the
// chart ignores loadBalancerIP beside it, iks refuses the pair; the
// gateway runs only in the listed zones (or zoneSelector's, which must
// be listed).
func (p *Plan) checkZoneLB(spec Spec) []error {
	if !spec.ZoneLoadBalancer.IsSet() {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	pairs := map[string]string{}
	var text string
	if err := json.Unmarshal(spec.ZoneLoadBalancer.RawMessage, &text); err == nil {
		for _, e := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			z, ip, ok := strings.Cut(e, "=")
			if !ok {
				bad("zoneLoadBalancer %q: write ZONE=IP, one a line, e.g. dal10=169.26.233.186", e)
				continue
			}
			if _, dup := pairs[strings.TrimSpace(z)]; dup {
				bad("zoneLoadBalancer: zone %s is given twice: keep one IP per zone", strings.TrimSpace(z))
			}
			pairs[strings.TrimSpace(z)] = strings.TrimSpace(ip)
		}
	} else if err := json.Unmarshal(spec.ZoneLoadBalancer.RawMessage, &pairs); err != nil {
		return []error{fmt.Errorf("zoneLoadBalancer %s: write ZONE=IP lines (the chart's form) or a map of zone to IP", short(spec.ZoneLoadBalancer))}
	}
	p.ZoneLB = map[string]netip.Addr{}
	seen := map[netip.Addr]string{}
	for _, z := range slices.Sorted(maps.Keys(pairs)) {
		v := pairs[z]
		if problem := topology.ValidZone(z); problem != "" {
			bad("zoneLoadBalancer zone %q is not a zone name (%s): use the nodes' %s label values", z, problem, topology.LabelZone)
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			bad("zoneLoadBalancer %s=%q: give an IPv4 address of a portable subnet of zone %s", z, v, z)
			continue
		}
		if other, dup := seen[a]; dup {
			bad("zoneLoadBalancer gives %s to zones %s and %s: each zone needs its own IP", a, other, z)
			continue
		}
		seen[a] = z
		p.ZoneLB[z] = a
	}
	if spec.LoadBalancerIP != "" {
		bad("loadBalancerIP and zoneLoadBalancer exclude each other (the chart ignores loadBalancerIP then): keep one")
	}
	if z := strings.TrimSpace(spec.ZoneSelector); z != "" && len(errs) == 0 {
		if _, ok := p.ZoneLB[z]; !ok {
			bad("zoneSelector %s has no zoneLoadBalancer IP (it lists %s): add %s=IP", z, strings.Join(p.LBZones(), ", "), z)
		}
	}
	return errs
}

// LBZones are the zones of zoneLoadBalancer, sorted.
func (p *Plan) LBZones() []string { return slices.Sorted(maps.Keys(p.ZoneLB)) }
