package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// IP-in-IP parameters (IKS's own encapsulation).
const (
	IPIPDevice = "iks.tunl"
	// ipipOverhead is the outer IPv4 header.
	ipipOverhead = 20
)

// ensureIPIP creates or repairs the IP-in-IP device (no fixed remote: the
// outer destination is each route's gateway, as with Calico's tunl0) and
// returns its index. On a kernel without the ipip driver creating it
// fails ("operation not supported") and the caller falls back to VXLAN.
func ensureIPIP(nodeIP netip.Addr, uplink netlink.Link) (int, error) {
	mtu := uplink.Attrs().MTU - ipipOverhead
	if l, err := netlink.LinkByName(IPIPDevice); err == nil {
		if t, ok := l.(*netlink.Iptun); ok && t.Local.Equal(net.IP(nodeIP.AsSlice())) && t.Remote.IsUnspecified() {
			if l.Attrs().MTU != mtu {
				if err := netlink.LinkSetMTU(l, mtu); err != nil {
					return 0, fmt.Errorf("routing: set MTU %d on %s: %w", mtu, IPIPDevice, err)
				}
			}
			return l.Attrs().Index, netlink.LinkSetUp(l)
		}
		if err := netlink.LinkDel(l); err != nil {
			return 0, fmt.Errorf("routing: replace %s, whose settings differ: %w", IPIPDevice, err)
		}
	} else if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return 0, fmt.Errorf("routing: look up %s: %w", IPIPDevice, err)
	}
	want := &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: IPIPDevice, MTU: mtu},
		Local:     net.IP(nodeIP.AsSlice()),
		Remote:    net.IPv4zero,
		PMtuDisc:  1,
	}
	if err := netlink.LinkAdd(want); err != nil {
		return 0, fmt.Errorf("create ipip device %s: %w", IPIPDevice, err)
	}
	l, err := netlink.LinkByName(IPIPDevice)
	if err != nil {
		return 0, fmt.Errorf("routing: look up %s after creating it: %w", IPIPDevice, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("routing: bring up %s: %w", IPIPDevice, err)
	}
	return l.Attrs().Index, nil
}

// PodMTU returns the MTU pod interfaces need on this node: the uplink's
// (the interface holding nodeIP) minus the overhead of the tunnel the
// routing agent will use for encap mode (IP-in-IP 20 bytes where the
// kernel can create it, VXLAN 50 otherwise, none with EncapNever). It may
// create the IP-in-IP device, which the Router then reuses.
func PodMTU(nodeIP netip.Addr, encap string) (int, error) {
	uplink, err := uplinkFor(nodeIP)
	if err != nil {
		return 0, err
	}
	mtu := uplink.Attrs().MTU
	switch {
	case encap == EncapNever:
		return mtu, nil
	case func() bool { _, err := ensureIPIP(nodeIP, uplink); return err == nil }():
		return mtu - ipipOverhead, nil
	default:
		return mtu - vxlanOverhead, nil
	}
}
