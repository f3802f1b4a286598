package routing

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestRestartKeepsRoutesAndSwitchesEncap stops a node's router (its routes
// stay in the kernel, so pods keep forwarding), starts it again in
// Encap=Always mode and checks the same-subnet route moves to the tunnel
// while a stale route is pruned once the peer is back.
func TestRestartKeepsRoutesAndSwitchesEncap(t *testing.T) {
	testutil.RequireNetns(t)
	m := newMeshNet(t)
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	peers := []Peer{{Name: "n1", IP: addr("10.123.1.11")}, {Name: "n2", IP: addr("10.123.1.12")}}
	n1cfg := helperConfig{Name: "n1", IP: addr("10.123.1.11"), Subnet: pfx("10.123.1.0/24"), Blocks: []netip.Prefix{pfx("172.31.1.0/24")}, Peers: peers, StaleGrace: time.Minute}
	n1 := startNode(t, m.n1, n1cfg)
	startNode(t, m.n2, helperConfig{Name: "n2", IP: addr("10.123.1.12"), Subnet: pfx("10.123.1.0/24"), Blocks: []netip.Prefix{pfx("172.31.2.0/24")}, Peers: peers, StaleGrace: time.Minute})
	waitFor(t, 30*time.Second, "n1 learns n2's block natively", func() error {
		return wantRoute(t, m.n1, "172.31.2.0/24", "10.123.1.12", "eth0", false)
	})

	if err := n1.stop(); err != nil {
		t.Fatalf("stop n1: %v", err)
	}
	if err := wantRoute(t, m.n1, "172.31.2.0/24", "10.123.1.12", "eth0", false); err != nil {
		t.Fatalf("route removed when the router stopped: %v", err)
	}
	run(t, "ip", "-n", m.n1, "route", "add", "172.31.9.0/24", "via", "10.123.1.99", "dev", "eth0", "proto", "81")

	n1cfg.Encap = EncapAlways
	startNode(t, m.n1, n1cfg)
	waitFor(t, 30*time.Second, "n1 routes n2's block through VXLAN and drops the stale route", func() error {
		if err := wantRoute(t, m.n1, "172.31.2.0/24", "172.31.2.0", VXLANDevice, true); err != nil {
			return err
		}
		if _, ok := ownedRoutesIn(t, m.n1)["172.31.9.0/24"]; ok {
			return fmt.Errorf("stale route 172.31.9.0/24 still in n1")
		}
		return nil
	})
	// n2 is still CrossSubnet: it answers natively, which works because
	// n1 accepts VXLAN and native traffic alike.
	echoServer(t, m.n2, "172.31.2.5:7002")
	if err := echo(t, m.n1, "172.31.1.5", "172.31.2.5:7002"); err != nil {
		t.Fatalf("n1 pod -> n2 pod over VXLAN: %v", err)
	}
}
