package testutil

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Network is the e2e topology: a router namespace with one bridge per L2
// subnet, IP forwarding between them, and nothing else. Nodes and the
// external client hang off the bridges with veth pairs. No route leads to
// the machine's uplink.
//
// The router joins each subnet the way a real router joins a switch: by a
// NIC (a veth pair "gw-<subnet>" / "sw-<subnet>", the latter a port of the
// bridge) and not by an address on the bridge itself. A Linux bridge has
// no tunnel offload features for its own transmit path, so routing out of
// a bridge device segments every encapsulated (VXLAN, IP-in-IP) GSO packet
// in software, while plain TCP passes unsegmented: that made every tunnel
// look 4-5x slower than on any real network.
//
//	subnet "a"   10.<n>.1.0/24  router .254
//	subnet "b"   10.<n>.2.0/24  router .254
//	subnet "ext" 10.<n>.3.0/24  router .254 (external clients)
//	subnet "pub" 10.<n>.4.0/24  router .254 (nodes' public interfaces)
type Network struct {
	t      testing.TB
	ID     string
	Router *Netns
	n      int
}

// Subnets of every Network.
var Subnets = []string{"a", "b", "ext", "pub"}

// NewNetwork creates the router namespace; n (1..200) picks 10.n.0.0/16.
func NewNetwork(t testing.TB, id string, n int) *Network {
	t.Helper()
	nw := &Network{t: t, ID: id, Router: NewNetns(t, "iks-"+id+"-rt"), n: n}
	for i, s := range Subnets {
		br, gw, sw := "br-"+s, nw.RouterDev(s), "sw-"+s
		MustRun(t, "ip", "-n", nw.Router.Name, "link", "add", br, "type", "bridge")
		MustRun(t, "ip", "-n", nw.Router.Name, "link", "set", br, "up")
		MustRun(t, "ip", "-n", nw.Router.Name, "link", "add", gw, "type", "veth", "peer", "name", sw)
		MustRun(t, "ip", "-n", nw.Router.Name, "link", "set", sw, "master", br, "up")
		MustRun(t, "ip", "-n", nw.Router.Name, "addr", "add", fmt.Sprintf("10.%d.%d.254/24", n, i+1), "dev", gw)
		MustRun(t, "ip", "-n", nw.Router.Name, "link", "set", gw, "up")
	}
	if _, err := nw.Router.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}
	// On failure, the router's view: neighbours, links with their
	// counters, and any rule a test left (registered after the namespace,
	// so it runs before the namespace goes).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, c := range [][]string{{"ip", "neigh"}, {"ip", "-s", "link"}, {"iptables-save"}, {"nft", "list", "ruleset"}} {
			out, _ := nw.Router.Exec(c...)
			t.Logf("===== router %s: %s\n%s", nw.Router.Name, strings.Join(c, " "), out)
		}
	})
	return nw
}

// RouterDev is the router's own interface on a subnet.
func (nw *Network) RouterDev(subnet string) string { return "gw-" + subnet }

// IP returns the address of host h (1..253) on a subnet.
func (nw *Network) IP(subnet string, h int) string {
	for i, s := range Subnets {
		if s == subnet {
			return fmt.Sprintf("10.%d.%d.%d", nw.n, i+1, h)
		}
	}
	nw.t.Fatalf("unknown subnet %q", subnet)
	return ""
}

// Gateway of a subnet.
func (nw *Network) Gateway(subnet string) string { return nw.IP(subnet, 254) }

// Attach wires ns to a subnet with address ip as eth0 and a default route
// via the router. The router side is named after the namespace.
func (nw *Network) Attach(ns *Netns, subnet, ip, peer string) {
	t := nw.t
	t.Helper()
	MustRun(t, "ip", "link", "add", peer, "netns", nw.Router.Name, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	MustRun(t, "ip", "-n", nw.Router.Name, "link", "set", peer, "master", "br-"+subnet, "up")
	MustRun(t, "ip", "-n", ns.Name, "addr", "add", ip+"/24", "dev", "eth0")
	MustRun(t, "ip", "-n", ns.Name, "link", "set", "eth0", "up")
	MustRun(t, "ip", "-n", ns.Name, "route", "add", "default", "via", nw.Gateway(subnet))
}

// AttachSecond wires ns to a subnet with address ip on interface dev
// (a second NIC, such as a node's public interface), without routes: the
// caller decides which traffic leaves through it.
func (nw *Network) AttachSecond(ns *Netns, subnet, ip, peer, dev string) {
	t := nw.t
	t.Helper()
	MustRun(t, "ip", "link", "add", peer, "netns", nw.Router.Name, "type", "veth", "peer", "name", dev, "netns", ns.Name)
	MustRun(t, "ip", "-n", nw.Router.Name, "link", "set", peer, "master", "br-"+subnet, "up")
	MustRun(t, "ip", "-n", ns.Name, "addr", "add", ip+"/24", "dev", dev)
	MustRun(t, "ip", "-n", ns.Name, "link", "set", dev, "up")
}

// Cut takes a namespace's link down on the router side; Heal brings it back.
func (nw *Network) Cut(peer string) error {
	return exec.Command("ip", "-n", nw.Router.Name, "link", "set", peer, "down").Run()
}

// Heal undoes Cut.
func (nw *Network) Heal(peer string) error {
	return exec.Command("ip", "-n", nw.Router.Name, "link", "set", peer, "up").Run()
}

// Block drops TCP from src to dst:port in the router (for example the
// server reaching a worker's kubelet). It returns the undo.
func (nw *Network) Block(src, dst string, port int) (func(), error) {
	rule := []string{"FORWARD", "-p", "tcp", "-s", src, "-d", dst, "--dport", fmt.Sprint(port), "-j", "DROP"}
	if _, err := nw.Router.Exec(append([]string{"iptables", "-I"}, rule...)...); err != nil {
		return nil, err
	}
	return func() { _, _ = nw.Router.Exec(append([]string{"iptables", "-D"}, rule...)...) }, nil
}
