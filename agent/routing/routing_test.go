package routing

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	good := Config{NodeIP: netip.MustParseAddr("10.0.0.5"), NodeSubnet: netip.MustParsePrefix("10.0.0.7/24")}
	cfg, err := good.withDefaults()
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if cfg.ASN != DefaultASN || cfg.Port != DefaultPort || cfg.Encap != EncapCrossSubnet || cfg.NodeSubnet.String() != "10.0.0.0/24" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no node IP":         {func(c *Config) { c.NodeIP = netip.Addr{} }, "node IP"},
		"IPv6 node IP":       {func(c *Config) { c.NodeIP = netip.MustParseAddr("fd00::1") }, "node IP"},
		"subnet without IP":  {func(c *Config) { c.NodeSubnet = netip.MustParsePrefix("10.1.0.0/24") }, "does not contain"},
		"bad port":           {func(c *Config) { c.Port = 70000 }, "out of range"},
		"unknown encap mode": {func(c *Config) { c.Encap = "Sometimes" }, "unknown"},
	} {
		c := good
		tc.mod(&c)
		if _, err := c.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestVTEPMACIsDeterministicAndLocal(t *testing.T) {
	m := VTEPMAC(netip.MustParseAddr("10.123.1.11"))
	if m.String() != "02:1b:0a:7b:01:0b" {
		t.Errorf("VTEPMAC = %s", m)
	}
	if m[0]&0x02 == 0 || m[0]&0x01 != 0 {
		t.Errorf("VTEPMAC %s is not a locally administered unicast address", m)
	}
	if got := TunnelAddr(netip.MustParsePrefix("172.30.4.64/26")); got.String() != "172.30.4.64" {
		t.Errorf("TunnelAddr = %s", got)
	}
}

func TestPlan(t *testing.T) {
	cfg := Config{
		NodeIP:     netip.MustParseAddr("10.0.0.5"),
		NodeSubnet: netip.MustParsePrefix("10.0.0.0/24"),
		Encap:      EncapCrossSubnet,
	}
	local := []netip.Prefix{netip.MustParsePrefix("172.30.1.0/26")}
	lp := func(p, nh string) learnedPath {
		return learnedPath{Prefix: netip.MustParsePrefix(p), NextHop: netip.MustParseAddr(nh)}
	}
	learned := []learnedPath{
		lp("172.30.2.0/26", "10.0.0.6"), // same subnet: native
		lp("172.30.3.0/26", "10.0.9.7"), // other subnet: tunnel
		lp("10.0.0.0/16", "10.0.0.6"),   // contains the node IP
		lp("10.0.0.128/25", "10.0.0.6"), // inside the node subnet
		lp("172.30.1.0/24", "10.0.0.6"), // overlaps a local block
		lp("172.30.9.0/26", "10.0.0.5"), // next hop is this node
	}
	routes, skipped := plan(cfg, learned, local)
	if len(routes) != 2 || len(skipped) != 4 {
		t.Fatalf("plan: routes %v, skipped %v; want 2 routes and 4 skipped", routes, skipped)
	}
	if r := routes[netip.MustParsePrefix("172.30.2.0/26")]; r.Tunnel || r.Gateway().String() != "10.0.0.6" {
		t.Errorf("same-subnet block: %+v, want native via 10.0.0.6", r)
	}
	if r := routes[netip.MustParsePrefix("172.30.3.0/26")]; !r.Tunnel || r.Gateway().String() != "172.30.3.0" {
		t.Errorf("cross-subnet block: %+v, want tunnel via 172.30.3.0", r)
	}

	cfg.Encap = EncapAlways
	routes, _ = plan(cfg, learned, local)
	if !routes[netip.MustParsePrefix("172.30.2.0/26")].Tunnel {
		t.Errorf("Always: same-subnet block not tunnelled")
	}
	cfg.Encap = EncapNever
	routes, _ = plan(cfg, learned, local)
	if routes[netip.MustParsePrefix("172.30.3.0/26")].Tunnel {
		t.Errorf("Never: cross-subnet block tunnelled")
	}
}

func TestStaticPeersNotifies(t *testing.T) {
	s := NewStaticPeers(Peer{Name: "a", IP: netip.MustParseAddr("10.0.0.1")})
	s.Set(Peer{Name: "b", IP: netip.MustParseAddr("10.0.0.2")})
	s.Set(Peer{Name: "c", IP: netip.MustParseAddr("10.0.0.3")}) // coalesced, must not block
	select {
	case <-s.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification after Set")
	}
	if p := s.Peers(); len(p) != 1 || p[0].Name != "c" {
		t.Errorf("Peers() = %v, want only c", p)
	}
}

func TestNodeSubnetOfLoopback(t *testing.T) {
	got, err := NodeSubnet(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Skipf("no 127.0.0.1 on lo here: %v", err)
	}
	if got.String() != "127.0.0.0/8" {
		t.Errorf("NodeSubnet(127.0.0.1) = %s, want 127.0.0.0/8", got)
	}
	if _, err := NodeSubnet(netip.MustParseAddr("192.0.2.254")); err == nil || !strings.Contains(err.Error(), "192.0.2.254") {
		t.Errorf("NodeSubnet of an address not on the host: got %v, want an error naming it", err)
	}
}
