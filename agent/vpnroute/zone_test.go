package vpnroute

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iks-dev/iks/internal/vpnconn"
)

func TestZoneSpecificRoutes(t *testing.T) {
	zoned := plan(t, vpnconn.Spec{ZoneSelector: "dal10", ZoneSpecificRoutes: true, Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	everywhere := plan(t, vpnconn.Spec{ZoneSelector: "dal10", Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	for _, tc := range []struct {
		name string
		p    *vpnconn.Plan
		role Role
		zone string
		want Role
	}{
		{"in the zone", zoned, RoleVia, "dal10", RoleVia},
		{"another zone", zoned, RoleVia, "dal12", RoleOutOfZone},
		{"zone unknown", zoned, RoleVia, "", RoleOutOfZone},
		{"down elsewhere", zoned, RoleDown, "dal12", RoleOutOfZone},
		{"the gateway itself", zoned, RoleGateway, "dal12", RoleGateway},
		{"not zone-specific", everywhere, RoleVia, "dal12", RoleVia},
	} {
		if got := inZone(connPlan{Plan: tc.p, Role: tc.role}, tc.zone).Role; got != tc.want {
			t.Errorf("%s: role %v, want %v", tc.name, got, tc.want)
		}
	}
	// Out of zone: a blackhole, never a route to the gateway.
	if r := wantRoute(zoned.Routed[0], nil); r.Type != unix.RTN_BLACKHOLE {
		t.Errorf("out-of-zone route type %d", r.Type)
	}
}
