package vpnconn

import (
	"fmt"
	"maps"
	"strings"

	"github.com/iks-dev/iks/internal/topology"
)

// checkPlacement computes the gateway's node selector: nodeSelector
// plus, as the chart's zoneSelector, the zone label of the given zone
// (a multizone cluster keeps the gateway, and so the tunnel's routes'
// next hop, in one zone; pick the zone of a loadBalancerIP's subnet).
func (p *Plan) checkPlacement(spec Spec) []error {
	p.NodeSelector = maps.Clone(spec.NodeSelector)
	z := strings.TrimSpace(spec.ZoneSelector)
	if z == "" {
		if spec.ZoneSpecificRoutes {
			return []error{fmt.Errorf("zoneSpecificRoutes needs zoneSelector: set the gateway's zone (routes go to the nodes of that zone only), or remove zoneSpecificRoutes to route on every node")}
		}
		return nil
	}
	if problem := topology.ValidZone(z); problem != "" {
		return []error{fmt.Errorf("zoneSelector %q is not a zone name (%s): give the zone of the nodes that may run the gateway (their label %s)", z, problem, topology.LabelZone)}
	}
	if cur, ok := p.NodeSelector[topology.LabelZone]; ok && cur != z {
		return []error{fmt.Errorf("zoneSelector %q and nodeSelector %s=%q ask for different zones: keep one", z, topology.LabelZone, cur)}
	}
	if p.NodeSelector == nil {
		p.NodeSelector = map[string]string{}
	}
	p.NodeSelector[topology.LabelZone] = z
	if spec.ZoneSpecificRoutes {
		p.RouteZone = z
	}
	return nil
}
