package vpnroute

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/topology"
)

// inZone applies zoneSpecificRoutes: a connection whose routes are
// limited to its zone (Plan.RouteZone) is not routed to the gateway from
// nodes of other zones (the chart runs no route daemon there). iks
// blackholes the remote subnets on those nodes instead of leaving them
// to the default route: nothing leaves in clear text. zone is this
// node's zone, "" when unknown (treated as outside).
func inZone(cp connPlan, zone string) connPlan {
	if cp.Plan.RouteZone == "" || cp.Role == RoleGateway || zone == cp.Plan.RouteZone {
		return cp
	}
	cp.Role = RoleOutOfZone
	return cp
}

// nodeZone reads this node's zone label (only when a connection limits
// its routes to a zone).
func (r *Router) nodeZone(ctx context.Context) (string, error) {
	if r.cs == nil {
		return "", fmt.Errorf("no API client")
	}
	n, err := r.cs.CoreV1().Nodes().Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read node %s: %w", r.cfg.NodeName, err)
	}
	return topology.Zone(n), nil
}
