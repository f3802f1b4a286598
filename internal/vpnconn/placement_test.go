package vpnconn

import (
	"strings"
	"testing"
)

func TestZoneSelector(t *testing.T) {
	s := validSpec()
	s.NodeSelector = map[string]string{"vpn": "yes"}
	s.ZoneSelector = "dal10"
	p, err := Validate("c", s, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if p.NodeSelector["vpn"] != "yes" || p.NodeSelector["topology.kubernetes.io/zone"] != "dal10" || len(s.NodeSelector) != 1 {
		t.Errorf("node selector %v (spec's %v must stay as it is)", p.NodeSelector, s.NodeSelector)
	}
	s.ZoneSelector = "dal 10"
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), `zoneSelector "dal 10" is not a zone name`) {
		t.Errorf("bad zone: %v", err)
	}
	s.ZoneSelector, s.NodeSelector = "dal10", map[string]string{"topology.kubernetes.io/zone": "dal12"}
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), "ask for different zones") {
		t.Errorf("conflicting zones: %v", err)
	}
}

func TestZoneSpecificRoutes(t *testing.T) {
	s := validSpec()
	s.ZoneSpecificRoutes = true
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), "zoneSpecificRoutes needs zoneSelector") {
		t.Errorf("zoneSpecificRoutes without zoneSelector: %v", err)
	}
	s.ZoneSelector = "dal10"
	if p, err := Validate("c", s, testCluster); err != nil {
		t.Error(err)
	} else if p.RouteZone != "dal10" {
		t.Errorf("route zone %q, want dal10", p.RouteZone)
	}
	s.ZoneSpecificRoutes = false
	if p, err := Validate("c", s, testCluster); err != nil {
		t.Error(err)
	} else if p.RouteZone != "" {
		t.Errorf("zoneSelector alone limits routes to %q", p.RouteZone)
	}
}
