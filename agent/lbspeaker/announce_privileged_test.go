package lbspeaker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
	"golang.org/x/sys/unix"
)

// The privileged test builds two fresh named network namespaces, "node"
// and "peer", joined by a veth pair, and removes them at the end. Nothing
// touches the machine's own namespace.

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAnnouncerAddsIPSendsGARPAndRemoves(t *testing.T) {
	testutil.RequireNetns(t)
	node, peer := testutil.NewNetns(t, testutil.NetnsName("n")).Name, testutil.NewNetns(t, testutil.NetnsName("p")).Name
	run(t, "ip", "link", "add", "n0", "netns", node, "type", "veth", "peer", "name", "p0", "netns", peer)
	run(t, "ip", "-n", node, "addr", "add", "10.199.0.2/24", "dev", "n0")
	run(t, "ip", "-n", peer, "addr", "add", "10.199.0.1/24", "dev", "p0")
	run(t, "ip", "-n", node, "link", "set", "n0", "up")
	run(t, "ip", "-n", peer, "link", "set", "p0", "up")
	lbIP := netip.MustParseAddr("10.199.0.70")
	stale := netip.MustParseAddr("10.199.0.71")
	pool := []netip.Prefix{netip.MustParsePrefix("10.199.0.64/29")}
	// The peer believes the LB IP lives at another MAC (the previous
	// announcer): GARP must move it.
	run(t, "ip", "-n", peer, "neigh", "replace", lbIP.String(), "lladdr", "02:00:00:00:00:99", "dev", "p0", "nud", "stale")
	nodeMAC := strings.Fields(run(t, "ip", "-n", node, "-br", "link", "show", "n0"))[2]

	// Capture ARP on the peer side with a raw socket.
	var capFD int
	if err := testutil.InNetns(peer, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		capFD = fd
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(capFD)
	if err := unix.SetsockoptTimeval(capFD, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 0, Usec: 200000}); err != nil {
		t.Fatal(err)
	}

	var a *Announcer
	if err := testutil.InNetns(node, func() (err error) {
		a, err = NewAnnouncer(netip.MustParseAddr("10.199.0.2"), slog.New(slog.NewTextHandler(io.Discard, nil)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a.Interface() != "n0" {
		t.Fatalf("uplink %q, want n0 (holds the node IP)", a.Interface())
	}
	run(t, "ip", "-n", node, "addr", "add", stale.String()+"/32", "dev", "n0")

	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Now()
	if err := a.Add(ctx, lbIP); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "ip", "-n", node, "-4", "addr", "show", "dev", "n0"); !strings.Contains(out, lbIP.String()+"/32") || !strings.Contains(out, "n0:lb") {
		t.Fatalf("%s/32 (label n0:lb) not on n0:\n%s", lbIP, out)
	}

	garps := 0
	buf := make([]byte, 128)
	for time.Since(t0) < 2*time.Second && garps < 4 {
		n, _, err := unix.Recvfrom(capFD, buf, 0)
		if err != nil {
			continue
		}
		if op, mac, ip, ok := parseARP(buf[:n]); ok && ip == lbIP && mac.String() == nodeMAC && (op == 1 || op == 2) {
			garps++
		}
	}
	if garps < 4 {
		t.Errorf("peer saw %d gratuitous ARPs for %s from %s within 2s, want >= 4 (two rounds)", garps, lbIP, nodeMAC)
	}
	if out := run(t, "ip", "-n", peer, "neigh", "show", lbIP.String(), "dev", "p0"); !strings.Contains(out, nodeMAC) {
		t.Errorf("peer's neighbour entry for %s did not move to %s: %s", lbIP, nodeMAC, out)
	}
	// The node's kernel answers ARP for the IP: the peer reaches it.
	var ln net.Listener
	if err := testutil.InNetns(node, func() (err error) { ln, err = net.Listen("tcp", lbIP.String()+":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := testutil.InNetns(peer, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 3*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Errorf("peer cannot reach %s on the node: %v", ln.Addr(), err)
	}

	held, err := a.Held(pool)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(held, netip.Addr.Compare)
	if fmt.Sprint(held) != fmt.Sprint([]netip.Addr{lbIP, stale}) {
		t.Errorf("Held = %v, want [%s %s] (pool /32s only, not the node IP)", held, lbIP, stale)
	}

	cancel()
	for _, ip := range []netip.Addr{lbIP, stale} {
		if err := a.Remove(ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Remove(lbIP); err != nil {
		t.Errorf("removing an absent IP: %v", err)
	}
	if out := run(t, "ip", "-n", node, "-4", "addr", "show", "dev", "n0"); strings.Contains(out, "10.199.0.7") || !strings.Contains(out, "10.199.0.2/24") {
		t.Errorf("after Remove n0 has:\n%s", out)
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Add(context.Background(), netip.MustParseAddr("10.199.0.2")); err == nil {
		t.Error("the node IP was accepted as a LoadBalancer IP")
	}
}
