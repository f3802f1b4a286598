// Package cni is the iks pod network plugin: a Calico-style CNI plugin that
// gives each pod a veth pair and a /32 address from the node's blocks, with
// the host side of the veth acting as the pod's next hop (no bridge).
//
// Wiring of one pod (container ID C, interface eth0, address P):
//
//	pod netns:  eth0 with P/32, up; lo up
//	            169.254.1.1 dev eth0 scope link
//	            default via 169.254.1.1 dev eth0
//	            neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee permanent
//	host netns: caliXXXXXXXXXXX (HostVethName(C, "eth0")), MAC ee:ee:ee:ee:ee:ee,
//	            up, proxy_arp=1, proxy_delay=0, forwarding=1
//	            P/32 dev caliXXXXXXXXXXX scope link proto RouteProtocol
//	            net.ipv4.ip_forward=1
//
// The plugin is compiled into the iks binary and runs when it is invoked
// under the name PluginType (containerd execs a symlink of that name); see
// PluginMain. The CNI commands are also plain functions (Add, Del, Check,
// Status, GC) that run in the network namespace of the calling thread.
package cni

import (
	"crypto/sha1"
	"encoding/hex"
	"net"
	"net/netip"
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
)

const (
	// PluginType is the plugin's "type" in the network configuration and
	// the name of the symlink to the iks binary in the CNI bin directory.
	PluginType = "iks-cni"

	// RouteProtocol marks the host routes to pods that the plugin installs
	// ("proto 80" in `ip route`), so other parts of the agent can tell them
	// apart from routes they own.
	RouteProtocol netlink.RouteProtocol = 80

	// HostVethPrefix starts the name of every host-side pod interface.
	HostVethPrefix = "cali"

	// GatewayAddress is the link-local next hop configured in every pod;
	// the host side of the veth answers for it.
	GatewayAddress = "169.254.1.1"

	// HostVethMAC is the MAC address of every host-side pod interface.
	HostVethMAC = "ee:ee:ee:ee:ee:ee"
)

var (
	gatewayIP = netip.MustParseAddr(GatewayAddress)
	hostMAC   = mustMAC(HostVethMAC)
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// supportedVersions are the CNI spec versions the plugin accepts; all of them
// carry interfaces in results, which chained plugins such as portmap need.
var supportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// HostVethName returns the name of the host-side interface of the pod
// attachment (containerID, ifName): "cali" and the first 11 hex digits of
// sha1(containerID + ifName), 15 characters, within IFNAMSIZ.
func HostVethName(containerID, ifName string) string {
	sum := sha1.Sum([]byte(containerID + ifName))
	return HostVethPrefix + hex.EncodeToString(sum[:])[:11]
}

// AllocationHandle returns the IPAM handle of the pod attachment
// (containerID, ifName).
func AllocationHandle(containerID, ifName string) string {
	return containerID + "/" + ifName
}

// PluginMain runs one CNI command as described by the CNI_* environment and
// stdin, and prints the result to stdout. On failure it prints the CNI error
// and exits with status 1; on success it returns and the caller should exit
// with status 0 at once. It is meant to be called from main when the binary
// is invoked as PluginType.
func PluginMain() {
	// Keep the main goroutine on one OS thread: the commands act on the
	// network namespace of the calling thread (the host's).
	runtime.LockOSThread()
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		Status: cmdStatus,
		GC:     cmdGC,
	}, supportedVersions, "iks-cni: iks pod network plugin (Calico-style veth and /32 routing)")
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := loadForCmd(args)
	if err != nil {
		return err
	}
	result, err := addWithConf(conf, args)
	if err != nil {
		return err
	}
	return types.PrintResult(result, conf.CNIVersion)
}

func cmdDel(args *skel.CmdArgs) error {
	conf, err := loadForCmd(args)
	if err != nil {
		return err
	}
	return delWithConf(conf, args)
}

func cmdCheck(args *skel.CmdArgs) error {
	conf, err := loadForCmd(args)
	if err != nil {
		return err
	}
	return checkWithConf(conf, args)
}

func cmdStatus(args *skel.CmdArgs) error {
	conf, err := loadForCmd(args)
	if err != nil {
		return err
	}
	return statusWithConf(conf)
}

func cmdGC(args *skel.CmdArgs) error {
	conf, err := loadForCmd(args)
	if err != nil {
		return err
	}
	return gcWithConf(conf, args)
}

// loadForCmd parses the configuration and reports problems with the CNI
// error code for an invalid network configuration.
func loadForCmd(args *skel.CmdArgs) (*NetConf, error) {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return conf, nil
}
