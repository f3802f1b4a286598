package vpnconn

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func zoneSpec(t *testing.T, zoneLB string) Spec {
	t.Helper()
	s := validSpec()
	if err := json.Unmarshal([]byte(`{"zoneLoadBalancer":`+zoneLB+`}`), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestZoneLoadBalancer(t *testing.T) {
	for _, v := range []string{`"dal10=10.87.1.100\ndal12=10.87.2.100"`, `{"dal12":"10.87.2.100","dal10":"10.87.1.100"}`} {
		s := zoneSpec(t, v)
		s.IPsec.Auto, s.Remote.Gateway = "start", "198.51.100.7"
		p, err := Validate("c", s, testCluster)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := strings.Join(p.LBZones(), ","); got != "dal10,dal12" || p.ZoneLB["dal12"] != netip.MustParseAddr("10.87.2.100") {
			t.Errorf("%s: zones %s map %v", v, got, p.ZoneLB)
		}
		if p.LoadBalancerIP.IsValid() || !p.ConnectUsingLB {
			t.Errorf("%s: LoadBalancerIP %v (set by the gateway from its zone), ConnectUsingLB %v (auto with start: true)", v, p.LoadBalancerIP, p.ConnectUsingLB)
		}
	}
	s := zoneSpec(t, `"dal10=10.87.1.100"`)
	s.ZoneSelector = "dal10"
	if _, err := Validate("c", s, testCluster); err != nil {
		t.Errorf("zoneSelector listed: %v", err)
	}
	if p, err := Validate("c", zoneSpec(t, `{}`), testCluster); err != nil || len(p.ZoneLB) != 0 {
		t.Errorf("the chart's empty value: %v %v", p, err)
	}
}

func TestZoneLoadBalancerRefused(t *testing.T) {
	for _, tc := range []struct {
		v    string
		mod  func(*Spec)
		want string
	}{
		{`"dal10:10.87.1.100"`, nil, `zoneLoadBalancer "dal10:10.87.1.100": write ZONE=IP`},
		{`"dal10=10.87.1.300"`, nil, `zoneLoadBalancer dal10="10.87.1.300": give an IPv4 address of a portable subnet of zone dal10`},
		{`"dal 10=10.87.1.100"`, nil, `zoneLoadBalancer zone "dal 10" is not a zone name`},
		{`"dal10=10.87.1.100\ndal12=10.87.1.100"`, nil, "zoneLoadBalancer gives 10.87.1.100 to zones dal10 and dal12"},
		{`"dal10=10.87.1.100\ndal10=10.87.1.101"`, nil, "zone dal10 is given twice"},
		{`[1]`, nil, "zoneLoadBalancer [1]: write ZONE=IP lines"},
		{`"dal10=10.87.1.100"`, func(s *Spec) { s.LoadBalancerIP = "10.87.1.101" }, "loadBalancerIP and zoneLoadBalancer exclude each other"},
		{`"dal10=10.87.1.100"`, func(s *Spec) { s.ZoneSelector = "dal12" }, "zoneSelector dal12 has no zoneLoadBalancer IP (it lists dal10): add dal12=IP"},
	} {
		s := zoneSpec(t, tc.v)
		if tc.mod != nil {
			tc.mod(&s)
		}
		_, err := Validate("c", s, testCluster)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.v, err, tc.want)
		}
	}
}
