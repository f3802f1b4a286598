package cni

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
)

// The privileged tests run every step inside network namespaces they create:
// one standing for the node ("host") and one per pod. Nothing touches the
// machine's own namespace, and removing the namespaces removes every link.

const (
	uplinkName = "uplink0"
	uplinkMTU  = 1450
	// hostAddr is the node's address on its uplink (TEST-NET-1, only ever
	// used inside the test's own namespaces).
	hostAddr = "192.0.2.1"
)

// newNetNS creates a network namespace that is removed when the test ends.
func newNetNS(t *testing.T) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = n.Close()
		if _, err := os.Stat(n.Path()); errors.Is(err, os.ErrNotExist) {
			return // the test removed it already
		}
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("remove network namespace %s: %v", n.Path(), err)
		}
	})
	return n
}

// newHostNS creates a namespace standing for a node: lo up and an
// uplink with an address, MTU uplinkMTU and the default route.
func newHostNS(t *testing.T) ns.NetNS {
	t.Helper()
	n := newNetNS(t)
	doIn(t, n, func() error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		// A veth pair with both ends up stands for the uplink: this kernel
		// may lack the dummy driver, and a veth has carrier.
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = uplinkName, uplinkMTU
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: uplinkName + "p"}); err != nil {
			return err
		}
		uplink, err := netlinksafe.LinkByName(uplinkName)
		if err != nil {
			return err
		}
		peer, err := netlinksafe.LinkByName(uplinkName + "p")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(peer); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(uplink); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(hostAddr + "/24")
		if err := netlink.AddrAdd(uplink, addr); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: uplink.Attrs().Index, Gw: net.ParseIP("192.0.2.254")})
	})
	return n
}

// doIn runs fn on a thread inside n and fails the test on error.
func doIn(t *testing.T, n ns.NetNS, fn func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatalf("in %s: %v", n.Path(), err)
	}
}

// linkExists reports whether a link called name exists in n.
func linkExists(t *testing.T, n ns.NetNS, name string) bool {
	t.Helper()
	var found bool
	doIn(t, n, func() error {
		_, err := netlinksafe.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
			found = true
		case errors.As(err, &nf):
		default:
			return err
		}
		return nil
	})
	return found
}

// caliLinks lists the host-side pod interfaces in n.
func caliLinks(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	var names []string
	doIn(t, n, func() error {
		links, err := netlinksafe.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, HostVethPrefix) {
				names = append(names, l.Attrs().Name)
			}
		}
		return nil
	})
	return names
}

// unmountNS removes the bind mount that keeps n alive.
func unmountNS(n ns.NetNS) error { return testutils.UnmountNS(n) }
