package routing

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// birdConf is a ToR router (AS 64600) peering with n1 and n2 that sends
// them a default route and a route covering the whole pod range.
const birdConf = `
router id 10.123.1.1;
protocol device {}
protocol static {
	ipv4;
	route 0.0.0.0/0 blackhole;
	route 172.31.0.0/16 blackhole;
}
template bgp node {
	local 10.123.1.1 as 64600;
	ipv4 { import all; export all; next hop self; };
	connect retry time 1;
	error wait time 1, 5;
}
protocol bgp n1 from node { neighbor 10.123.1.11 as 64512; }
protocol bgp n2 from node { neighbor 10.123.1.12 as 64512; }
`

// TestExternalPeerBIRD: n1 peers with BIRD as an external eBGP peer; BIRD
// learns n1's block (and not the block n1 learned from its mesh peer n2);
// nothing BIRD sends (a default and a covering route) is installed; n2
// expects the wrong AS for BIRD and never gets Established, and its status
// names the NOTIFICATION.
func TestExternalPeerBIRD(t *testing.T) {
	testutil.RequireNetns(t)
	m := newMeshNet(t)
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	bird := testutil.StartBIRD(t, m.r, birdConf)
	mesh := []Peer{{Name: "n1", IP: addr("10.123.1.11")}, {Name: "n2", IP: addr("10.123.1.12")}}
	n1 := startNode(t, m.n1, helperConfig{Name: "n1", IP: addr("10.123.1.11"), Subnet: pfx("10.123.1.0/24"),
		Blocks: []netip.Prefix{pfx("172.31.1.0/24")}, StaleGrace: time.Minute, GR: 120 * time.Second,
		Peers: append(mesh, Peer{Name: "bgppeer/tor", IP: addr("10.123.1.1"), External: true, ASN: 64600})})
	n2 := startNode(t, m.n2, helperConfig{Name: "n2", IP: addr("10.123.1.12"), Subnet: pfx("10.123.1.0/24"),
		Blocks: []netip.Prefix{pfx("172.31.2.0/24")}, StaleGrace: time.Minute, GR: 120 * time.Second,
		Peers: append(mesh, Peer{Name: "bgppeer/tor-wrong-as", IP: addr("10.123.1.1"), External: true, ASN: 64999})})

	waitFor(t, 30*time.Second, "BIRD learns n1's block via n1", func() error {
		out, err := bird.Birdc("show route protocol n1")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "172.31.1.0/24") || !strings.Contains(out, "10.123.1.11") {
			return fmt.Errorf("BIRD has no route to 172.31.1.0/24 via 10.123.1.11:\n%s", out)
		}
		return nil
	})
	waitFor(t, 30*time.Second, "n1 learns n2's block over the mesh", func() error {
		return wantRoute(t, m.n1, "172.31.2.0/24", "10.123.1.12", "eth0", false)
	})
	var ext PeerStatus
	waitFor(t, 15*time.Second, "n1's status: BIRD established, routes received but none accepted", func() error {
		st, err := n1.readStatus()
		if err != nil {
			return err
		}
		for _, p := range st.Peers {
			if p.Type == PeerTypeExternal {
				ext = p
			}
		}
		if ext.State != "established" || ext.ASN != 64600 || ext.Received < 2 || ext.Accepted != 0 {
			return fmt.Errorf("external peer %+v", ext)
		}
		return nil
	})
	t.Logf("n1's external peer: %+v", ext)

	// Let BIRD's routes settle, then check nothing of them is routed.
	if out, err := bird.Birdc("show route export n1"); err != nil || !strings.Contains(out, "0.0.0.0/0") {
		t.Fatalf("BIRD does not export its default route to n1: %v\n%s", err, out)
	}
	for _, ns := range []string{m.n1, m.n2} {
		owned := ownedRoutesIn(t, ns)
		for _, dst := range []string{"default", "0.0.0.0/0", "172.31.0.0/16"} {
			if r, ok := owned[dst]; ok {
				t.Errorf("%s installed BIRD's route %s: %+v", ns, dst, r)
			}
		}
		if def := run(t, "ip", "-n", ns, "route", "show", "default"); !strings.Contains(def, "via 10.123.1.1 dev eth0") || strings.Contains(def, "proto 81") {
			t.Errorf("%s's uplink default route changed: %s", ns, def)
		}
	}
	st, _ := n1.readStatus()
	for _, r := range st.Routes {
		if r.NextHop == addr("10.123.1.1") || r.Dst.Bits() < 24 {
			t.Errorf("n1 status lists a route from BIRD: %+v", r)
		}
	}
	if out, _ := bird.Birdc("show route"); strings.Contains(out, "172.31.2.0/24") {
		t.Errorf("BIRD learned n2's block although n2's session has the wrong AS (n1 must not re-advertise mesh routes):\n%s", out)
	}

	// n2 expects AS 64999: the session is refused with a NOTIFICATION.
	waitFor(t, 20*time.Second, "n2 reports the wrong-AS NOTIFICATION", func() error {
		st, err := n2.readStatus()
		if err != nil {
			return err
		}
		for _, p := range st.Peers {
			if p.Type != PeerTypeExternal {
				continue
			}
			if p.State == "established" {
				t.Fatalf("wrong-AS session established: %+v", p)
			}
			if !strings.Contains(p.LastError, "bad peer as") {
				return fmt.Errorf("external peer %+v: no bad peer AS error yet", p)
			}
			t.Logf("n2's external peer: %+v", p)
			return nil
		}
		return fmt.Errorf("n2 has no external peer: %+v", st.Peers)
	})
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, _ := bird.Birdc("show protocols n2"); strings.Contains(out, "Established") {
			t.Fatalf("BIRD established the wrong-AS session:\n%s", out)
		}
	}
}
