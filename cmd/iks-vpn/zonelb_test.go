package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestZoneIP(t *testing.T) {
	lb := map[string]netip.Addr{"z2": netip.MustParseAddr("10.87.2.100"), "z1": netip.MustParseAddr("10.87.1.100")}
	if ip, err := zoneIP(lb, "z2", "w2"); err != nil || ip != lb["z2"] {
		t.Errorf("z2: %v %v", ip, err)
	}
	_, err := zoneIP(lb, "z3", "w3")
	if err == nil || !strings.Contains(err.Error(), `node w3 is in zone "z3", which zoneLoadBalancer does not list (z1, z2): add z3=IP`) {
		t.Errorf("unlisted zone: %v", err)
	}
}

func TestLocalIDResolved(t *testing.T) {
	lb := netip.MustParseAddr("10.87.1.100")
	for _, tc := range []struct {
		id, public string
		lb         netip.Addr
		want, err  string
	}{
		{"%loadBalancerIP", "", lb, "10.87.1.100", ""},
		{"%nodePublicIP", "203.0.113.5/24", lb, "203.0.113.5", ""},
		{"ibm-cloud", "", netip.Addr{}, "ibm-cloud", ""},
		{"%nodePublicIP", "", lb, "", "node w1 has no public address"},
		{"%loadBalancerIP", "", netip.Addr{}, "", "has no load balancer IP"},
	} {
		got, err := localID(tc.id, tc.lb, tc.public, "w1")
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s (public %q): %q, %v; want %q, %q", tc.id, tc.public, got, err, tc.want, tc.err)
		}
	}
}
