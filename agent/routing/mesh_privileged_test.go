package routing

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// meshNet builds the test topology: a router namespace with a bridge for
// subnet A (10.123.1.0/24: n1, n2) and a routed link to subnet B
// (10.123.2.0/24: n3). Each node namespace has eth0, a default route via
// the router and a "pod" address of its block on a veth (pod0).
type meshNet struct {
	r, n1, n2, n3 string
}

func newMeshNet(t *testing.T) meshNet {
	t.Helper()
	ns := func(suffix string) string { return testutil.NewNetns(t, testutil.NetnsName(suffix)).Name }
	m := meshNet{r: ns("r"), n1: ns("n1"), n2: ns("n2"), n3: ns("n3")}
	run(t, "ip", "-n", m.r, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", m.r, "addr", "add", "10.123.1.1/24", "dev", "br0")
	run(t, "ip", "-n", m.r, "link", "set", "br0", "up")
	run(t, "ip", "netns", "exec", m.r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	node := func(ns, rside, addr, gw, pod string) {
		run(t, "ip", "-n", m.r, "link", "add", rside, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", ns, "route", "add", "default", "via", gw)
		run(t, "ip", "-n", ns, "link", "add", "pod0", "type", "veth", "peer", "name", "pod0p")
		run(t, "ip", "-n", ns, "addr", "add", pod+"/32", "dev", "pod0")
		run(t, "ip", "-n", ns, "link", "set", "pod0", "up")
		run(t, "ip", "-n", ns, "link", "set", "pod0p", "up")
		run(t, "ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	}
	node(m.n1, "n1", "10.123.1.11/24", "10.123.1.1", "172.31.1.5")
	node(m.n2, "n2", "10.123.1.12/24", "10.123.1.1", "172.31.2.5")
	run(t, "ip", "-n", m.r, "link", "set", "n1", "master", "br0", "up")
	run(t, "ip", "-n", m.r, "link", "set", "n2", "master", "br0", "up")
	node(m.n3, "n3", "10.123.2.13/24", "10.123.2.1", "172.31.3.5")
	run(t, "ip", "-n", m.r, "addr", "add", "10.123.2.1/24", "dev", "n3")
	run(t, "ip", "-n", m.r, "link", "set", "n3", "up")
	return m
}

// wantRoute checks one proto-81 route of a namespace.
func wantRoute(t *testing.T, ns, dst, gw, dev string, onlink bool) error {
	r, ok := ownedRoutesIn(t, ns)[dst]
	switch {
	case !ok:
		return fmt.Errorf("%s: no proto 81 route to %s", ns, dst)
	case r.Gateway != gw || r.Dev != dev || slices.Contains(r.Flags, "onlink") != onlink:
		return fmt.Errorf("%s: route to %s is %+v, want via %s dev %s onlink=%v", ns, dst, r, gw, dev, onlink)
	}
	return nil
}

// echoServer listens on addr inside ns and echoes one line per connection.
func echoServer(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := testutil.InNetns(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = io.WriteString(c, line)
				}
			}()
		}
	}()
}

// echo dials dst from src inside ns and checks the echo.
func echo(t *testing.T, ns, src, dst string) error {
	t.Helper()
	return testutil.InNetns(ns, func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp4", dst)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "hello "+src+"\n"); err != nil {
			return err
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != "hello "+src+"\n" {
			return fmt.Errorf("echo from %s to %s: got %q, %v", src, dst, got, err)
		}
		return nil
	})
}

func TestMeshCrossSubnet(t *testing.T) {
	testutil.RequireNetns(t)
	m := newMeshNet(t)
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	peers := []Peer{{Name: "n1", IP: addr("10.123.1.11")}, {Name: "n2", IP: addr("10.123.1.12")}, {Name: "n3", IP: addr("10.123.2.13")}}
	// A route left by a previous run that nobody advertises any more.
	run(t, "ip", "-n", m.n1, "route", "add", "172.31.9.0/24", "via", "10.123.1.99", "dev", "eth0", "proto", "81")

	cfg := func(name, ip, subnet, block string) helperConfig {
		return helperConfig{Name: name, IP: addr(ip), Subnet: pfx(subnet), Blocks: []netip.Prefix{pfx(block)}, Peers: peers, StaleGrace: time.Minute}
	}
	n1 := startNode(t, m.n1, cfg("n1", "10.123.1.11", "10.123.1.0/24", "172.31.1.0/24"))
	n2 := startNode(t, m.n2, cfg("n2", "10.123.1.12", "10.123.1.0/24", "172.31.2.0/24"))
	startNode(t, m.n3, cfg("n3", "10.123.2.13", "10.123.2.0/24", "172.31.3.0/24"))

	waitFor(t, 30*time.Second, "n1 learns n2 natively and n3 through VXLAN", func() error {
		if err := wantRoute(t, m.n1, "172.31.2.0/24", "10.123.1.12", "eth0", false); err != nil {
			return err
		}
		return wantRoute(t, m.n1, "172.31.3.0/24", "172.31.3.0", VXLANDevice, true)
	})
	waitFor(t, 30*time.Second, "n3 learns both blocks through VXLAN", func() error {
		if err := wantRoute(t, m.n3, "172.31.1.0/24", "172.31.1.0", VXLANDevice, true); err != nil {
			return err
		}
		return wantRoute(t, m.n3, "172.31.2.0/24", "172.31.2.0", VXLANDevice, true)
	})
	waitFor(t, 10*time.Second, "n1's stale route removed once all peers are up", func() error {
		if _, ok := ownedRoutesIn(t, m.n1)["172.31.9.0/24"]; ok {
			return fmt.Errorf("stale route 172.31.9.0/24 still in n1")
		}
		return nil
	})
	waitFor(t, 10*time.Second, "n1 reports both sessions established", func() error {
		st, err := n1.readStatus()
		if err != nil {
			return err
		}
		if st.Encapsulation != TunnelVXLAN {
			return fmt.Errorf("encapsulation %q, want %q", st.Encapsulation, TunnelVXLAN)
		}
		if len(st.Peers) != 2 || st.Peers[0].State != "established" || st.Peers[1].State != "established" || len(st.Routes) != 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	echoServer(t, m.n2, "172.31.2.5:7001")
	echoServer(t, m.n3, "172.31.3.5:7001")
	rx1, rx2 := rxPackets(t, m.n1, VXLANDevice), rxPackets(t, m.n2, VXLANDevice)
	if err := echo(t, m.n1, "172.31.1.5", "172.31.2.5:7001"); err != nil {
		t.Fatalf("n1 pod -> n2 pod (same subnet): %v", err)
	}
	if a, b := rxPackets(t, m.n1, VXLANDevice), rxPackets(t, m.n2, VXLANDevice); a != rx1 || b != rx2 {
		t.Errorf("same-subnet traffic went through VXLAN: rx n1 %d->%d, n2 %d->%d", rx1, a, rx2, b)
	}
	rx3 := rxPackets(t, m.n3, VXLANDevice)
	if err := echo(t, m.n1, "172.31.1.5", "172.31.3.5:7001"); err != nil {
		t.Fatalf("n1 pod -> n3 pod (cross subnet): %v", err)
	}
	if a, b := rxPackets(t, m.n1, VXLANDevice), rxPackets(t, m.n3, VXLANDevice); a == rx1 || b == rx3 {
		t.Errorf("cross-subnet traffic did not go through VXLAN: rx n1 %d->%d, n3 %d->%d", rx1, a, rx3, b)
	} else {
		t.Logf("VXLAN rx: n1 %d->%d, n3 %d->%d; n1 routes %v", rx1, a, rx3, b, ownedRoutesIn(t, m.n1))
	}

	if fdb := run(t, "bridge", "-n", m.n3, "fdb", "show", "dev", VXLANDevice); !strings.Contains(fdb, "dst 10.123.1.12") {
		t.Errorf("n3 has no FDB entry for n2's VTEP:\n%s", fdb)
	}
	if err := n2.stop(); err != nil {
		t.Fatalf("stop n2: %v", err)
	}
	waitFor(t, 15*time.Second, "n2's block, FDB and neighbour entries withdrawn on n1 and n3", func() error {
		if fdb := run(t, "bridge", "-n", m.n3, "fdb", "show", "dev", VXLANDevice); strings.Contains(fdb, "dst 10.123.1.12") {
			return fmt.Errorf("n3 still has n2's FDB entry:\n%s", fdb)
		}
		if neigh := run(t, "ip", "-n", m.n3, "neigh", "show", "dev", VXLANDevice); strings.Contains(neigh, "172.31.2.0 ") {
			return fmt.Errorf("n3 still has n2's tunnel neighbour:\n%s", neigh)
		}
		if _, ok := ownedRoutesIn(t, m.n1)["172.31.2.0/24"]; ok {
			return fmt.Errorf("n1 still routes 172.31.2.0/24")
		}
		if _, ok := ownedRoutesIn(t, m.n3)["172.31.2.0/24"]; ok {
			return fmt.Errorf("n3 still routes 172.31.2.0/24")
		}
		return nil
	})
	if err := wantRoute(t, m.n1, "172.31.3.0/24", "172.31.3.0", VXLANDevice, true); err != nil {
		t.Errorf("after n2 left: %v", err)
	}
}
