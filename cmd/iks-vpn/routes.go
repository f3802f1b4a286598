package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The anchor addresses (see ensureAnchors) live on the loopback device
// (kernels without the dummy module are common) under this label.
const (
	anchorDevice = "lo"
	anchorLabel  = "lo:iksvpn"
)

// ensureAnchors gives the node an address inside every local traffic
// selector it has none in. kernel-libipsec routes the remote subnets into
// its TUN device with a source address taken from the local selector and
// refuses the CHILD SA ("error installing route with policy ...") when
// the host has no address there: the service range, a NAT-mapped range
// or the single source IP. The anchor is the selector's last address
// (never a pod or service address: the allocators skip a range's
// broadcast address) or the /32 itself, on the loopback device.
func ensureAnchors(local []netip.Prefix) ([]netip.Addr, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var want []netip.Addr
next:
	for _, p := range local {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && p.Contains(ip) {
				continue next
			}
		}
		want = append(want, anchorOf(p))
	}
	if len(want) == 0 {
		return nil, nil
	}
	link, err := netlink.LinkByName(anchorDevice)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", anchorDevice, err)
	}
	for _, a := range want {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}, Label: anchorLabel}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return nil, fmt.Errorf("add %s to %s: %w", a, anchorDevice, err)
		}
	}
	return want, nil
}

// anchorOf is the last address of p (the address itself for a /32 or /31's second).
func anchorOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// removeAnchors deletes the anchor addresses, if any.
func removeAnchors() error {
	link, err := netlink.LinkByName(anchorDevice)
	if err != nil {
		return nil
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", anchorDevice, err)
	}
	var errs []error
	for _, a := range addrs {
		if a.Label == anchorLabel {
			if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("delete %s from %s: %w", a.IPNet, anchorDevice, err))
			}
		}
	}
	return errors.Join(errs...)
}
