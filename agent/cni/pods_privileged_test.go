package cni

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/iks-dev/iks/tests/testutil"
	"github.com/vishvananda/netlink"
)

func TestTwoPodsGetDistinctAddressesAndTalk(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newHostNS(t)
	conf := testConf(t, filepath.Join(t.TempDir(), "ipam"), 1400, "172.30.6.0/24")
	a, b := newPod(t, "ctr-a", conf), newPod(t, "ctr-b", conf)
	_, ipA := mustAdd(t, hostNS, a.args)
	_, ipB := mustAdd(t, hostNS, b.args)
	if ipA == ipB {
		t.Fatalf("both pods got %s", ipA)
	}
	if got := caliLinks(t, hostNS); len(got) != 2 {
		t.Errorf("host has pod interfaces %v, want 2", got)
	}
	// Pod to pod through the node: needs forwarding and both host routes.
	if src := dialEcho(t, a.ns, startEcho(t, b.ns, ipB)); src != ipA {
		t.Errorf("pod-to-pod connection came from %s, want %s (no NAT)", src, ipA)
	}
	// Without its static neighbour entry pod A must ARP for the gateway,
	// and the host answers by proxy ARP.
	doIn(t, a.ns, func() error {
		eth0, err := netlinksafe.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.NeighDel(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: netlink.FAMILY_V4, IP: net.ParseIP(GatewayAddress)})
	})
	dialEcho(t, a.ns, startEcho(t, b.ns, ipB))
	mustDel(t, hostNS, a.args)
	mustDel(t, hostNS, b.args)
}

// TestPodsWorkWithoutHostDefaultRoute: on a node without a default route the
// MTU falls back to 1500, proxy ARP cannot answer for the gateway, and the
// static neighbour entry keeps pod-to-pod traffic working.
func TestPodsWorkWithoutHostDefaultRoute(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newNetNS(t)
	// Only lo, up as on any real node: without a local address the kernel
	// has no local routing table and treats every neighbour as broadcast.
	doIn(t, hostNS, func() error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	conf := testConf(t, filepath.Join(t.TempDir(), "ipam"), 0, "172.30.13.0/24")
	a, b := newPod(t, "ctr-a", conf), newPod(t, "ctr-b", conf)
	_, ipA := mustAdd(t, hostNS, a.args)
	_, ipB := mustAdd(t, hostNS, b.args)
	doIn(t, a.ns, func() error {
		eth0, err := netlinksafe.LinkByName("eth0")
		if err == nil && eth0.Attrs().MTU != defaultMTU {
			t.Errorf("pod MTU = %d without a host default route, want %d", eth0.Attrs().MTU, defaultMTU)
		}
		return err
	})
	if src := dialEcho(t, a.ns, startEcho(t, b.ns, ipB)); src != ipA {
		t.Errorf("pod-to-pod connection came from %s, want %s", src, ipA)
	}
	mustDel(t, hostNS, a.args)
	mustDel(t, hostNS, b.args)
}

func TestRepeatedAddKeepsAddressAndRewires(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newHostNS(t)
	p := newPod(t, "ctr-retry", testConf(t, filepath.Join(t.TempDir(), "ipam"), 0, "172.30.9.0/24"))
	_, first := mustAdd(t, hostNS, p.args)
	_, second := mustAdd(t, hostNS, p.args)
	if first != second {
		t.Errorf("repeated Add gave %s, then %s", first, second)
	}
	if err := hostNS.Do(func(ns.NetNS) error { return Check(p.args) }); err != nil {
		t.Errorf("Check after repeated Add: %v", err)
	}
	dialEcho(t, hostNS, startEcho(t, p.ns, second))
	mustDel(t, hostNS, p.args)
}
