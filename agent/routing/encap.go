package routing

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// VXLAN fallback parameters.
const (
	VXLANDevice = "iks.vxlan"
	VXLANVNI    = 4096
	VXLANPort   = 4789
	// vxlanOverhead is what VXLAN over IPv4 adds to a packet.
	vxlanOverhead = 50
)

// Encapsulation names reported by Router.Encapsulation.
const (
	TunnelVXLAN = "vxlan"
	TunnelIPIP  = "ipip"
	TunnelNone  = "none"
)

// VTEPMAC is the MAC address of a node's iks.vxlan device, derived from
// its node IP (02:1b + the four address bytes) so peers can program their
// FDB and neighbour entries without any extra exchange.
func VTEPMAC(nodeIP netip.Addr) net.HardwareAddr {
	b := nodeIP.As4()
	return net.HardwareAddr{0x02, 0x1b, b[0], b[1], b[2], b[3]}
}

// TunnelAddr is the address a node's tunnel device carries and peers use
// as the gateway of its block: the block's first address, which the IPAM
// reserves for the node.
func TunnelAddr(block netip.Prefix) netip.Addr { return block.Masked().Addr() }

// ensureVXLAN creates or repairs the VXLAN device and returns its index.
func ensureVXLAN(nodeIP netip.Addr, uplink netlink.Link) (int, error) {
	mtu := uplink.Attrs().MTU - vxlanOverhead
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: VXLANDevice, MTU: mtu, HardwareAddr: VTEPMAC(nodeIP)},
		VxlanId:      VXLANVNI,
		VtepDevIndex: uplink.Attrs().Index,
		SrcAddr:      net.IP(nodeIP.AsSlice()),
		Port:         VXLANPort,
		Learning:     false,
	}
	return ensureTunnel(want, func(l netlink.Link) bool {
		vx, ok := l.(*netlink.Vxlan)
		return ok && vxlanMatches(vx, want)
	}, func(err error) error {
		return fmt.Errorf("routing: create %s (VNI %d, UDP %d, local %s): %w; the kernel needs the vxlan module and UDP port %d free", VXLANDevice, VXLANVNI, VXLANPort, nodeIP, err, VXLANPort)
	})
}

func vxlanMatches(have, want *netlink.Vxlan) bool {
	return have.VxlanId == want.VxlanId && have.Port == want.Port &&
		have.SrcAddr.Equal(want.SrcAddr) && !have.Learning &&
		have.VtepDevIndex == want.VtepDevIndex &&
		have.HardwareAddr.String() == want.HardwareAddr.String()
}

// ensureTunnelAddr makes addr/32 the only IPv4 address of the device.
func ensureTunnelAddr(index int, addr netip.Addr) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("routing: look up tunnel device %d: %w", index, err)
	}
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("routing: list addresses of %s: %w", l.Attrs().Name, err)
	}
	found := false
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if addr.IsValid() && ip == addr && ones == 32 {
			found = true
			continue
		}
		if err := netlink.AddrDel(l, &a); err != nil {
			return fmt.Errorf("routing: remove stale address %s from %s: %w", a.IPNet, l.Attrs().Name, err)
		}
	}
	if found || !addr.IsValid() {
		return nil
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("routing: add tunnel address %s/32 to %s: %w", addr, l.Attrs().Name, err)
	}
	return nil
}

// uplinkFor returns the link that holds ip.
func uplinkFor(ip netip.Addr) (netlink.Link, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("routing: list addresses: %w", err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == ip {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("routing: look up the interface of %s: %w", ip, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("routing: node IP %s is on no interface of this host; set the node IP to an address of this host", ip)
}

// NodeSubnet returns the subnet of the interface address that is ip, for
// Config.NodeSubnet (e.g. 10.0.0.5 configured as 10.0.0.5/24 gives
// 10.0.0.0/24).
func NodeSubnet(ip netip.Addr) (netip.Prefix, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("routing: list addresses: %w", err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == ip {
			ones, _ := a.Mask.Size()
			return netip.PrefixFrom(ip, ones).Masked(), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("routing: node IP %s is on no interface of this host; set the node IP to an address of this host", ip)
}
