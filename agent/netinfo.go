package agent

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// nodeSubnet returns the L2 subnet of the interface that holds ip: peers
// inside it are routed natively, others through the tunnel.
func nodeSubnet(ip netip.Addr) (netip.Prefix, string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		got, ok := netip.AddrFromSlice(a.IP)
		if !ok || got.Unmap() != ip {
			continue
		}
		bits, _ := a.Mask.Size()
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return netip.Prefix{}, "", fmt.Errorf("link of %s: %w", ip, err)
		}
		return netip.PrefixFrom(ip, bits).Masked(), link.Attrs().Name, nil
	}
	return netip.Prefix{}, "", fmt.Errorf("node IP %s is on no interface of this host: pass --node-ip with one of its addresses", ip)
}
