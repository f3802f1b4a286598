package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/iks-dev/iks/tests/testutil"
)

// bgpTarget is the convergence target.
const bgpTarget = 3 * time.Second

// TestBGPConvergence measures, on the server, how long a worker's block
// takes to appear as a kernel route after the Node got it (join), and to
// disappear when the worker's agent crashes (graceful restart off), when
// the whole machine vanishes (link cut, no FIN, default graceful
// restart) and when a stopped worker's Node is deleted; next to it, the
// same poller's latency for a plain `ip route add` (the floor of what can
// be measured this way).
func TestBGPConvergence(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "bgb", 97)
	srv := testutil.NewNodeOn(t, "bgb-s", nw, "a", 1)
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	tok, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	cs := srv.Client()
	ctx := context.Background()
	nl := handleIn(t, srv.Net.Path())

	// Baseline: a route added with netlink, seen by the same poller.
	_, dummy, _ := net.ParseCIDR("192.0.2.0/24")
	t0 := time.Now()
	if err := nl.RouteAdd(&netlink.Route{Dst: dummy, LinkIndex: linkIndex(t, nl, "eth0"), Gw: net.ParseIP(nw.Gateway("a"))}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, nl, dummy, true, time.Minute)
	base := time.Since(t0)

	w := testutil.NewNodeOn(t, "bgb-w", nw, "b", 1).AsAgent("https://"+srv.IP+":6443", strings.TrimSpace(string(tok)))
	// First with graceful restart off on the worker: its agent crashing
	// (kill -9, the kernel still up and closing the TCP session) then
	// withdraws its routes at once.
	noGR := []string{"--bgp-graceful-restart-time", "0"}
	w.Start(noGR...)
	// The worker's first block, from the IPAMBlock it claims at start.
	bc := srv.BlockClient(srv.Kubeconfig())
	var block *net.IPNet
	deadline := time.Now().Add(3 * time.Minute)
	for block == nil {
		if bs, err := bc.List(ctx, w.Name); err == nil && len(bs) > 0 {
			_, block, _ = net.ParseCIDR(bs[0].Spec.CIDR)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker claimed no IPAMBlock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t0 = time.Now()
	waitRoute(t, nl, block, true, 3*time.Minute)
	join := time.Since(t0)
	w.WaitReady(3 * time.Minute)

	t0 = time.Now()
	w.Kill() // kill -9; the worker's kernel sends the FIN
	waitRoute(t, nl, block, false, time.Minute)
	crash := time.Since(t0)

	// From here on the defaults (graceful restart 120 s), as users run.
	w.Start()
	waitRoute(t, nl, block, true, 3*time.Minute)
	w.WaitReady(3 * time.Minute)
	// A machine that vanishes: kill -9 and its link cut, no FIN. The
	// server notices at the hold timer, then keeps the routes for the
	// graceful restart time, by design (a restarting agent must not cut
	// its pods off).
	t0 = time.Now()
	w.Kill()
	if err := nw.Cut(w.Peer()); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, nl, block, false, 6*time.Minute)
	vanish := time.Since(t0)
	if err := nw.Heal(w.Peer()); err != nil {
		t.Fatal(err)
	}
	w.Start()
	waitRoute(t, nl, block, true, 3*time.Minute)
	w.WaitReady(3 * time.Minute)

	// Removing a node for good: stop its agent (the routes stay, graceful
	// restart), then delete the Node: the clock starts at the delete,
	// with the route checked present just before.
	if _, err := w.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, nl, block, true, time.Second)
	t0 = time.Now()
	if err := cs.CoreV1().Nodes().Delete(ctx, w.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, nl, block, false, 3*time.Minute)
	leave := time.Since(t0)

	report := func(what string, d time.Duration, target time.Duration) {
		fmt.Printf("BGP convergence %-44s %9s  target %-5s (%.2fx of target)  baseline route-add %s (%.0fx)\n",
			what, d.Round(time.Millisecond), target, float64(d)/float64(target), base.Round(time.Microsecond), float64(d)/float64(base))
	}
	report("join (block -> route on server)", join, bgpTarget)
	report("agent crash, GR off (kill -> gone)", crash, bgpTarget)
	report("machine vanishes, GR 120 s (cut -> gone)", vanish, 30*time.Second+120*time.Second)
	report("stop, then delete Node (delete -> gone)", leave, bgpTarget)
	fmt.Println("(a vanished machine's routes stay for the 30 s hold time plus the 120 s graceful restart time, by design; its pods are unreachable either way)")
}

func handleIn(t *testing.T, path string) *netlink.Handle {
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	return nl
}

func linkIndex(t *testing.T, nl *netlink.Handle, name string) int {
	l, err := nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// waitRoute polls every millisecond until a route to dst exists (or not).
func waitRoute(t *testing.T, nl *netlink.Handle, dst *net.IPNet, present bool, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < timeout {
		rs, err := nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
		if err == nil && (len(rs) > 0) == present {
			return time.Since(t0)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("route to %s present=%v not reached within %s", dst, present, timeout)
	return 0
}
