package vpnroute

import (
	"net/netip"
	"slices"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// Role of this node for one connection.
type Role int

// Roles.
const (
	// RoleDown: the tunnel is configured but not up (or its gateway is
	// unknown): the remote subnets are blackholed, never sent in clear
	// text out of the default route.
	RoleDown Role = iota
	// RoleGateway: charon runs here; its own routing table (220) sends
	// the remote subnets into its TUN device while it is up, and the
	// main table's blackhole catches them when it is not.
	RoleGateway
	// RoleVia: the remote subnets go to the gateway node.
	RoleVia
	// RoleOutOfZone: zoneSpecificRoutes and this node is outside the
	// gateway's zone: the remote subnets are blackholed (zone.go).
	RoleOutOfZone
)

// connPlan is what this node does for one connection.
type connPlan struct {
	Plan        *vpnconn.Plan
	Role        Role
	GatewayNode string
}

// roleOf decides this node's role for conn.
func roleOf(c *vpnconn.Conn, node string) Role {
	gw := c.Status.Gateway.Node
	switch {
	case gw == node && gw != "":
		return RoleGateway
	case c.Up():
		return RoleVia
	default:
		return RoleDown
	}
}

// remoteSets are the destination sets of the nft rules: every routed
// (as the cluster sees them) and real remote subnet of all connections.
func remoteSets(plans []connPlan) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range plans {
		out = append(out, p.Plan.Routed...)
		out = append(out, p.Plan.RemoteTS...)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}
