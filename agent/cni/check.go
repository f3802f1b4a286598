package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/agent/ipam"
)

// Check verifies that the pod attachment described by args is intact (CNI
// CHECK): the address is allocated, the host veth is up with proxy ARP and
// the host route, and the pod interface has the address and both routes. If
// the configuration carries a prevResult, its address must match. It must run
// in the host network namespace.
func Check(args *skel.CmdArgs) error {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return checkWithConf(conf, args)
}

func checkWithConf(conf *NetConf, args *skel.CmdArgs) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	log, closeLog := conf.logger("CHECK", args)
	defer closeLog()

	if err := check(conf, args); err != nil {
		log.Error("CHECK failed", "err", err)
		return err
	}
	return nil
}

func check(conf *NetConf, args *skel.CmdArgs) error {
	if err := validateArgs(args); err != nil {
		return err
	}
	store, err := ipam.Open(conf.IPAM.DataDir)
	if err != nil {
		return err
	}
	handle := AllocationHandle(args.ContainerID, args.IfName)
	podIP, ok, err := store.Lookup(handle)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no pod address is allocated for %s in %s; the attachment was never added or was deleted", handle, store.Dir())
	}
	if args.Netns == "" {
		return errors.New("CNI_NETNS is empty; CHECK needs the pod network namespace path")
	}
	if err := checkPrevResult(conf, podIP); err != nil {
		return err
	}
	if err := checkHostSide(HostVethName(args.ContainerID, args.IfName), podIP); err != nil {
		return err
	}
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		if err := checkPodSide(args.IfName, podIP); err != nil {
			return fmt.Errorf("pod network namespace %s: %w", args.Netns, err)
		}
		return nil
	})
}

func checkPrevResult(conf *NetConf, podIP netip.Addr) error {
	if conf.PrevResult == nil {
		return nil
	}
	prev, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return fmt.Errorf("convert prevResult: %w", err)
	}
	for _, ipc := range prev.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap() == podIP {
			return nil
		}
	}
	return fmt.Errorf("prevResult does not contain the allocated pod address %s", podIP)
}

func checkHostSide(hostName string, podIP netip.Addr) error {
	link, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", hostName, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("host veth %s is down", hostName)
	}
	if v, err := readSysctl("net/ipv4/conf/" + hostName + "/proxy_arp"); err != nil {
		return err
	} else if v != "1" {
		return fmt.Errorf("host veth %s has proxy_arp=%s, want 1", hostName, v)
	}
	want := hostRoute(link, podIP)
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4, want,
		netlink.RT_FILTER_DST|netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list host routes to %s: %w", podIP, err)
	}
	if len(routes) == 0 {
		return fmt.Errorf("host route %s dev %s proto %d is missing", want.Dst, hostName, RouteProtocol)
	}
	return nil
}

func checkPodSide(ifName string, podIP netip.Addr) error {
	link, err := netlinksafe.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifName, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %s is down", ifName)
	}
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", ifName, err)
	}
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == hostNet(podIP).String() }) {
		return fmt.Errorf("interface %s lacks address %s/32", ifName, podIP)
	}
	routes, err := netlinksafe.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", ifName, err)
	}
	gw := net.IP(gatewayIP.AsSlice())
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return r.Dst != nil && r.Dst.String() == hostNet(gatewayIP).String() && r.Scope == netlink.SCOPE_LINK
	}) {
		return fmt.Errorf("route %s dev %s scope link is missing", gatewayIP, ifName)
	}
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool { return isDefaultRoute(r) && r.Gw.Equal(gw) }) {
		return fmt.Errorf("default route via %s dev %s is missing", gatewayIP, ifName)
	}
	return nil
}
