package cni

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/agent/ipam"
	"github.com/iks-dev/iks/tests/testutil"
)

// pod is one pod attachment made by a test.
type pod struct {
	ns   ns.NetNS
	args *skel.CmdArgs
}

func newPod(t *testing.T, containerID string, conf []byte) pod {
	t.Helper()
	n := newNetNS(t)
	return pod{ns: n, args: &skel.CmdArgs{ContainerID: containerID, Netns: n.Path(), IfName: "eth0", StdinData: conf}}
}

func addIn(t *testing.T, hostNS ns.NetNS, args *skel.CmdArgs) (*types100.Result, error) {
	t.Helper()
	var res *types100.Result
	err := hostNS.Do(func(ns.NetNS) error {
		var err error
		res, err = Add(args)
		return err
	})
	return res, err
}

func mustAdd(t *testing.T, hostNS ns.NetNS, args *skel.CmdArgs) (*types100.Result, netip.Addr) {
	t.Helper()
	res, err := addIn(t, hostNS, args)
	if err != nil {
		t.Fatalf("Add(%s): %v", args.ContainerID, err)
	}
	if len(res.IPs) != 1 {
		t.Fatalf("Add result has %d IPs, want 1", len(res.IPs))
	}
	ip, ok := netip.AddrFromSlice(res.IPs[0].Address.IP)
	if !ok {
		t.Fatalf("bad IP in result: %v", res.IPs[0].Address)
	}
	return res, ip.Unmap()
}

func mustDel(t *testing.T, hostNS ns.NetNS, args *skel.CmdArgs) {
	t.Helper()
	doIn(t, hostNS, func() error { return Del(args) })
}

// startEcho serves TCP echo on ip inside n and returns the listen address.
func startEcho(t *testing.T, n ns.NetNS, ip netip.Addr) string {
	t.Helper()
	var ln net.Listener
	doIn(t, n, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(ip, 0).String())
		return err
	})
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialEcho connects from inside n to addr, checks that a message comes back
// and returns the local address of the connection.
func dialEcho(t *testing.T, n ns.NetNS, addr string) netip.Addr {
	t.Helper()
	var local netip.Addr
	doIn(t, n, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		msg := []byte("hello " + addr)
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("write to %s: %w", addr, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("read echo from %s: %w", addr, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("echo from %s = %q, want %q", addr, got, msg)
		}
		local = c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		return nil
	})
	return local
}

func TestAddWiresPodAndDelRemovesIt(t *testing.T) {
	testutil.RequireRoot(t)
	hostNS := newHostNS(t)
	dataDir := filepath.Join(t.TempDir(), "ipam")
	block := netip.MustParsePrefix("172.30.5.0/29")
	p := newPod(t, "ctr-add-del", testConf(t, dataDir, 0, block.String()))
	hostName := HostVethName(p.args.ContainerID, "eth0")

	res, podIP := mustAdd(t, hostNS, p.args)

	// Result: host and pod interfaces, the /32 on the pod interface.
	if !block.Contains(podIP) || podIP == block.Addr() {
		t.Errorf("pod IP %s not a usable address of %s", podIP, block)
	}
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != hostName || res.Interfaces[0].Mac != HostVethMAC ||
		res.Interfaces[1].Name != "eth0" || res.Interfaces[1].Sandbox != p.ns.Path() {
		t.Errorf("result interfaces = %v", res.Interfaces)
	}
	ipc := res.IPs[0]
	if ones, _ := ipc.Address.Mask.Size(); ones != 32 || !ipc.Gateway.Equal(net.ParseIP(GatewayAddress)) ||
		ipc.Interface == nil || *ipc.Interface != 1 {
		t.Errorf("result IP = %v", ipc)
	}
	if len(res.Routes) != 1 || !res.Routes[0].GW.Equal(net.ParseIP(GatewayAddress)) {
		t.Errorf("result routes = %v", res.Routes)
	}
	if _, err := res.GetAsVersion("0.4.0"); err != nil {
		t.Errorf("result does not convert to 0.4.0: %v", err)
	}

	// Pod side.
	doIn(t, p.ns, func() error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			t.Error("lo is down in the pod")
		}
		eth0, err := netlinksafe.LinkByName("eth0")
		if err != nil {
			return err
		}
		if eth0.Attrs().Flags&net.FlagUp == 0 || eth0.Attrs().MTU != uplinkMTU {
			t.Errorf("pod eth0 flags=%v mtu=%d, want up and the uplink MTU %d", eth0.Attrs().Flags, eth0.Attrs().MTU, uplinkMTU)
		}
		addrs, err := netlinksafe.AddrList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != podIP.String()+"/32" {
			t.Errorf("pod eth0 addresses = %v, want only %s/32", addrs, podIP)
		}
		routes, err := netlinksafe.RouteList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return r.Dst != nil && r.Dst.String() == GatewayAddress+"/32" && r.Scope == netlink.SCOPE_LINK
		}) {
			t.Errorf("pod routes %v lack %s dev eth0 scope link", routes, GatewayAddress)
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return isDefaultRoute(r) && r.Gw.Equal(net.ParseIP(GatewayAddress))
		}) {
			t.Errorf("pod routes %v lack default via %s", routes, GatewayAddress)
		}
		return nil
	})

	// Host side.
	doIn(t, hostNS, func() error {
		link, err := netlinksafe.LinkByName(hostName)
		if err != nil {
			return err
		}
		if link.Attrs().Flags&net.FlagUp == 0 || link.Attrs().HardwareAddr.String() != HostVethMAC {
			t.Errorf("host veth flags=%v mac=%s, want up with %s", link.Attrs().Flags, link.Attrs().HardwareAddr, HostVethMAC)
		}
		for key, want := range map[string]string{
			"net/ipv4/conf/" + hostName + "/proxy_arp":    "1",
			"net/ipv4/neigh/" + hostName + "/proxy_delay": "0",
			"net/ipv4/conf/" + hostName + "/forwarding":   "1",
			"net/ipv4/ip_forward":                         "1",
		} {
			if got, err := readSysctl(key); err != nil || got != want {
				t.Errorf("sysctl %s = %q (%v), want %s", key, got, err, want)
			}
		}
		routes, err := netlinksafe.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(routes) != 1 || routes[0].Dst.String() != podIP.String()+"/32" ||
			routes[0].Protocol != RouteProtocol || routes[0].Scope != netlink.SCOPE_LINK {
			t.Errorf("host routes over %s = %v, want %s/32 scope link proto %d", hostName, routes, podIP, RouteProtocol)
		}
		return nil
	})

	// Traffic both ways: node to pod and pod to node.
	if src := dialEcho(t, hostNS, startEcho(t, p.ns, podIP)); src.String() != hostAddr {
		t.Errorf("node-to-pod connection came from %s, want the node address %s", src, hostAddr)
	}
	if src := dialEcho(t, p.ns, startEcho(t, hostNS, netip.MustParseAddr(hostAddr))); src != podIP {
		t.Errorf("pod-to-node connection came from %s, want the pod address %s", src, podIP)
	}
	if err := hostNS.Do(func(ns.NetNS) error { return Check(p.args) }); err != nil {
		t.Errorf("Check of a healthy attachment: %v", err)
	}

	mustDel(t, hostNS, p.args)
	if linkExists(t, hostNS, hostName) {
		t.Errorf("host veth %s still exists after DEL", hostName)
	}
	if linkExists(t, p.ns, "eth0") {
		t.Error("pod eth0 still exists after DEL")
	}
	doIn(t, hostNS, func() error {
		routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{Dst: hostNet(podIP)}, netlink.RT_FILTER_DST)
		if err == nil && len(routes) != 0 {
			t.Errorf("host routes to %s remain after DEL: %v", podIP, routes)
		}
		return err
	})
	assertReleased(t, dataDir, p.args)
	// A second DEL is a no-op.
	mustDel(t, hostNS, p.args)
}

func assertReleased(t *testing.T, dataDir string, args *skel.CmdArgs) {
	t.Helper()
	store, err := ipam.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok, err := store.Lookup(AllocationHandle(args.ContainerID, args.IfName)); err != nil || ok {
		t.Errorf("address %s of %s still allocated (err %v)", ip, args.ContainerID, err)
	}
}
