package routing

import (
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
	local := net.IP(nodeIP.AsSlice())
	want := &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: IPIPDevice, MTU: uplink.Attrs().MTU - ipipOverhead},
		Local:     local,
		Remote:    net.IPv4zero,
		PMtuDisc:  1,
	}
	return ensureTunnel(want, func(l netlink.Link) bool {
		t, ok := l.(*netlink.Iptun)
		return ok && t.Local.Equal(local) && t.Remote.IsUnspecified()
	}, func(err error) error {
		return fmt.Errorf("create ipip device %s (the kernel needs the ipip module): %w", IPIPDevice, err)
	})
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
