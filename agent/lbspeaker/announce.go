package lbspeaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GARPSchedule is when gratuitous ARPs go out after taking an IP: at
// once, then a few more, so a neighbour that missed or rate-limited one
// still learns the new owner.
var GARPSchedule = []time.Duration{0, 200 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}

// Announcer adds LoadBalancer IPs as /32 to the node's uplink (the
// interface holding the node IP; the kernel then answers ARP for them)
// and announces each with gratuitous ARP. It is bound to the network
// namespace it was created in and safe for concurrent use.
type Announcer struct {
	log    *slog.Logger
	nl     *netlink.Handle
	link   netlink.Link
	sock   *arpSocket
	nodeIP netip.Addr

	mu sync.Mutex
	wg sync.WaitGroup
}

// NewAnnouncer finds the uplink holding nodeIP in the caller's network
// namespace and opens its netlink handle and ARP socket there.
func NewAnnouncer(nodeIP netip.Addr, log *slog.Logger) (*Announcer, error) {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	link, err := uplink(nl, nodeIP)
	if err != nil {
		nl.Close()
		return nil, err
	}
	sock, err := openARPSocket(link.Attrs().Index, link.Attrs().HardwareAddr)
	if err != nil {
		nl.Close()
		return nil, err
	}
	return &Announcer{log: log, nl: nl, link: link, sock: sock, nodeIP: nodeIP}, nil
}

// Interface is the uplink's name.
func (a *Announcer) Interface() string { return a.link.Attrs().Name }

func uplink(nl *netlink.Handle, ip netip.Addr) (netlink.Link, error) {
	addrs, err := nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, ad := range addrs {
		if a, ok := netip.AddrFromSlice(ad.IP.To4()); ok && a == ip {
			l, err := nl.LinkByIndex(ad.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("interface of %s: %w", ip, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("no interface holds the node IP %s: LoadBalancer IPs are announced on the interface with the node IP; check --node-ip", ip)
}

// AddrLabelSuffix marks LoadBalancer /32s (label "<uplink>:lb") so that
// iks-killall.sh can find and remove them.
const AddrLabelSuffix = ":lb"

func (a *Announcer) hostAddr(ip netip.Addr) *netlink.Addr {
	ad := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: unix.RT_SCOPE_UNIVERSE}
	if l := a.Interface() + AddrLabelSuffix; len(l) < unix.IFNAMSIZ {
		ad.Label = l
	}
	return ad
}

// Add puts ip on the uplink and sends gratuitous ARPs on GARPSchedule
// until ctx ends.
func (a *Announcer) Add(ctx context.Context, ip netip.Addr) error {
	if ip == a.nodeIP {
		return fmt.Errorf("refusing to announce the node IP %s as a LoadBalancer IP", ip)
	}
	a.mu.Lock()
	err := a.nl.AddrReplace(a.link, a.hostAddr(ip))
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("add %s/32 to %s: %w", ip, a.Interface(), err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		start := time.Now()
		for _, at := range GARPSchedule {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(at))):
			}
			if err := a.sock.announce(ip); err != nil {
				a.log.Warn("gratuitous ARP failed", "ip", ip, "interface", a.Interface(), "err", err)
			}
		}
	}()
	return nil
}

// Remove takes ip off the uplink (absent is fine).
func (a *Announcer) Remove(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ad := a.hostAddr(ip)
	ad.Label = "" // match the /32 whatever its label (older runs, other tools)
	err := a.nl.AddrDel(a.link, ad)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s/32 from %s: %w", ip, a.Interface(), err)
	}
	return nil
}

// Held lists the /32s on the uplink inside any of pools (other than the
// node IP).
func (a *Announcer) Held(pools []netip.Prefix) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	addrs, err := a.nl.AddrList(a.link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", a.Interface(), err)
	}
	var out []netip.Addr
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP.To4())
		if ones, _ := ad.Mask.Size(); !ok || ones != 32 || ip == a.nodeIP {
			continue
		}
		for _, p := range pools {
			if p.Contains(ip) {
				out = append(out, ip)
				break
			}
		}
	}
	return out, nil
}

// Close waits for pending ARP rounds (their contexts must be done) and
// releases the socket and handle.
func (a *Announcer) Close() error {
	a.wg.Wait()
	err := a.sock.close()
	a.nl.Close()
	return err
}
