package cni

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/agent/ipam"
	"github.com/iks-dev/iks/tests/testutil"
)

func TestAddFailureLeavesNothingBehind(t *testing.T) {
	testutil.RequireRoot(t)
	t.Run("block exhausted", func(t *testing.T) {
		hostNS := newHostNS(t)
		dataDir := filepath.Join(t.TempDir(), "ipam")
		block := netip.MustParsePrefix("172.30.7.0/30") // two usable addresses
		store, err := ipam.Open(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"x/eth0", "y/eth0"} {
			if _, err := store.Allocate([]netip.Prefix{block}, h); err != nil {
				t.Fatal(err)
			}
		}
		p := newPod(t, "ctr-full", testConf(t, dataDir, 0, block.String()))
		_, err = addIn(t, hostNS, p.args)
		if !errors.Is(err, ipam.ErrExhausted) {
			t.Fatalf("Add on a full block = %v, want ErrExhausted", err)
		}
		if got := caliLinks(t, hostNS); len(got) != 0 {
			t.Errorf("failed Add left host interfaces %v", got)
		}
		if linkExists(t, p.ns, "eth0") {
			t.Error("failed Add left eth0 in the pod")
		}
	})
	t.Run("pod interface exists", func(t *testing.T) {
		hostNS := newHostNS(t)
		dataDir := filepath.Join(t.TempDir(), "ipam")
		p := newPod(t, "ctr-clash", testConf(t, dataDir, 0, "172.30.8.0/24"))
		doIn(t, p.ns, func() error {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = "eth0"
			return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
		})
		_, err := addIn(t, hostNS, p.args)
		if err == nil || !strings.Contains(err.Error(), "eth0") {
			t.Fatalf("Add with eth0 already in the pod = %v, want an error naming eth0", err)
		}
		if got := caliLinks(t, hostNS); len(got) != 0 {
			t.Errorf("failed Add left host interfaces %v", got)
		}
		assertReleased(t, dataDir, p.args)
	})
}

func TestDelToleratesMissingNetns(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newHostNS(t)
	dataDir := filepath.Join(t.TempDir(), "ipam")
	conf := testConf(t, dataDir, 0, "172.30.10.0/24")

	t.Run("empty path", func(t *testing.T) {
		p := newPod(t, "ctr-empty", conf)
		mustAdd(t, hostNS, p.args)
		args := *p.args
		args.Netns = ""
		mustDel(t, hostNS, &args)
		assertReleased(t, dataDir, &args)
		if linkExists(t, hostNS, HostVethName(args.ContainerID, args.IfName)) {
			t.Error("host veth remains after DEL without netns")
		}
	})
	t.Run("namespace removed", func(t *testing.T) {
		p := newPod(t, "ctr-gone", conf)
		mustAdd(t, hostNS, p.args)
		path := p.ns.Path()
		_ = p.ns.Close()
		if err := unmountNS(p.ns); err != nil {
			t.Fatal(err)
		}
		mustDel(t, hostNS, &skel.CmdArgs{ContainerID: "ctr-gone", Netns: path, IfName: "eth0", StdinData: conf})
		assertReleased(t, dataDir, p.args)
		if linkExists(t, hostNS, HostVethName("ctr-gone", "eth0")) {
			t.Error("host veth remains after DEL of a removed namespace")
		}
	})
}

func TestCheckDetectsBrokenWiring(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newHostNS(t)
	dataDir := filepath.Join(t.TempDir(), "ipam")
	p := newPod(t, "ctr-check", testConf(t, dataDir, 0, "172.30.11.0/24"))
	res, podIP := mustAdd(t, hostNS, p.args)

	withPrev := func(r *types100.Result) *skel.CmdArgs {
		prev, err := resultJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		conf := strings.TrimSuffix(string(p.args.StdinData), "}") + `,"prevResult":` + prev + "}"
		args := *p.args
		args.StdinData = []byte(conf)
		return &args
	}
	check := func(args *skel.CmdArgs) error {
		return hostNS.Do(func(ns.NetNS) error { return Check(args) })
	}
	if err := check(withPrev(res)); err != nil {
		t.Fatalf("Check with matching prevResult: %v", err)
	}
	other := *res
	other.IPs = []*types100.IPConfig{{Interface: types100.Int(1), Address: *hostNet(netip.MustParseAddr("172.30.11.200")), Gateway: net.ParseIP(GatewayAddress)}}
	if err := check(withPrev(&other)); err == nil || !strings.Contains(err.Error(), podIP.String()) {
		t.Errorf("Check with a foreign prevResult = %v, want an error naming %s", err, podIP)
	}
	doIn(t, hostNS, func() error {
		link, err := netlinksafe.LinkByName(HostVethName(p.args.ContainerID, "eth0"))
		if err != nil {
			return err
		}
		return netlink.RouteDel(hostRoute(link, podIP))
	})
	if err := check(p.args); err == nil || !strings.Contains(err.Error(), "host route") {
		t.Errorf("Check without the host route = %v, want a host route error", err)
	}
	mustDel(t, hostNS, p.args)
}
