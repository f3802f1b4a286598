package routing

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// ensureTunnel makes the tunnel device want.Attrs().Name exist as wanted
// and up, and returns its index: an existing device that matches is kept
// (its MTU corrected if needed), one whose settings differ is replaced.
// createErr wraps a failed creation, so each tunnel type can say what the
// kernel lacks (IP-in-IP callers fall back to VXLAN on that error).
func ensureTunnel(want netlink.Link, matches func(netlink.Link) bool, createErr func(error) error) (int, error) {
	name, mtu := want.Attrs().Name, want.Attrs().MTU
	if l, err := netlink.LinkByName(name); err == nil {
		if matches(l) {
			if l.Attrs().MTU != mtu {
				if err := netlink.LinkSetMTU(l, mtu); err != nil {
					return 0, fmt.Errorf("routing: set MTU %d on %s: %w", mtu, name, err)
				}
			}
			return l.Attrs().Index, netlink.LinkSetUp(l)
		}
		if err := netlink.LinkDel(l); err != nil {
			return 0, fmt.Errorf("routing: replace %s, whose settings differ: %w", name, err)
		}
	} else if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return 0, fmt.Errorf("routing: look up %s: %w", name, err)
	}
	if err := netlink.LinkAdd(want); err != nil {
		return 0, createErr(err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("routing: look up %s after creating it: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("routing: bring up %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}
