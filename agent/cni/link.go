package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// This file holds the netlink and sysctl steps of the pod wiring. Functions
// without a namespace argument act on the network namespace of the calling
// thread.

// createVeth creates the veth pair with the host end hostName in the current
// network namespace and the pod end ifName directly in podNS, so the pod
// name never clashes with host interfaces.
func createVeth(hostName, ifName string, mtu int, podNS ns.NetNS) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = mtu
	attrs.HardwareAddr = hostMAC
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      ifName,
		PeerNamespace: netlink.NsFd(int(podNS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create veth %s with peer %s in %s: %w (an interface %s probably exists in the pod network namespace already)",
				hostName, ifName, podNS.Path(), err, ifName)
		}
		return nil, fmt.Errorf("create veth %s with peer %s in %s: %w", hostName, ifName, podNS.Path(), err)
	}
	link, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		_ = netlink.LinkDel(veth)
		return nil, fmt.Errorf("look up new veth %s: %w", hostName, err)
	}
	return link, nil
}

// configureHostSide sets the sysctls of the host end, brings it up and routes
// the pod address to it.
func configureHostSide(link netlink.Link, podIP netip.Addr) error {
	name := link.Attrs().Name
	for _, s := range []struct{ key, value string }{
		{"net/ipv4/conf/" + name + "/proxy_arp", "1"},
		{"net/ipv4/neigh/" + name + "/proxy_delay", "0"},
		{"net/ipv4/conf/" + name + "/forwarding", "1"},
	} {
		if err := writeSysctl(s.key, s.value); err != nil {
			return err
		}
	}
	// The host side must not autoconfigure from router advertisements; the
	// key is missing when IPv6 is disabled, which is fine.
	if err := writeSysctl("net/ipv6/conf/"+name+"/accept_ra", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set host veth %s up: %w", name, err)
	}
	route := hostRoute(link, podIP)
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("add host route %s dev %s: %w", route.Dst, name, err)
	}
	return nil
}

// hostRoute is the route to the pod address over the host end of its veth.
func hostRoute(link netlink.Link, podIP netip.Addr) *netlink.Route {
	return &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       hostNet(podIP),
		Scope:     netlink.SCOPE_LINK,
		Protocol:  RouteProtocol,
	}
}

// configurePodSide configures the pod end of the veth inside podNS and
// returns its MAC address.
func configurePodSide(podNS ns.NetNS, ifName string, podIP netip.Addr) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := podNS.Do(func(ns.NetNS) error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("look up lo: %w", err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		link, err := netlinksafe.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("look up %s: %w", ifName, err)
		}
		mac = link.Attrs().HardwareAddr
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: hostNet(podIP)}); err != nil {
			return fmt.Errorf("add address %s/32 to %s: %w", podIP, ifName, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", ifName, err)
		}
		idx := link.Attrs().Index
		gw := net.IP(gatewayIP.AsSlice())
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: hostNet(gatewayIP), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("add route %s dev %s scope link: %w", gatewayIP, ifName, err)
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: gw}); err != nil {
			return fmt.Errorf("add default route via %s dev %s: %w", gatewayIP, ifName, err)
		}
		// A permanent neighbour entry for the gateway: the pod never has to
		// ARP for it, so it works even where proxy ARP cannot answer
		// (a host without a route to 169.254.1.1).
		neigh := &netlink.Neigh{
			LinkIndex:    idx,
			Family:       netlink.FAMILY_V4,
			State:        netlink.NUD_PERMANENT,
			IP:           gw,
			HardwareAddr: hostMAC,
		}
		if err := netlink.NeighSet(neigh); err != nil {
			return fmt.Errorf("add neighbour %s lladdr %s dev %s: %w", gatewayIP, HostVethMAC, ifName, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("configure %s in %s: %w", ifName, podNS.Path(), err)
	}
	return mac, nil
}

// deleteVeth deletes the link called name in the current network namespace
// if it exists and is a veth; it reports whether it deleted one.
func deleteVeth(name string) (bool, error) {
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	if link.Type() != "veth" {
		return false, nil
	}
	if err := netlink.LinkDel(link); err != nil {
		if errors.Is(err, unix.ENODEV) {
			// Gone meanwhile, e.g. with its peer's namespace.
			return false, nil
		}
		return false, fmt.Errorf("delete veth %s: %w", name, err)
	}
	return true, nil
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// writeSysctl sets /proc/sys/<key> in the current network namespace.
func writeSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// readSysctl reads /proc/sys/<key> in the current network namespace.
func readSysctl(key string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", strings.ReplaceAll(key, "/", "."), err)
	}
	return strings.TrimSpace(string(data)), nil
}
