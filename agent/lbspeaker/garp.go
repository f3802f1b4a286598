package lbspeaker

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// arpSocket sends hand-built ARP frames on one interface through an
// AF_PACKET socket (opened in the network namespace of the caller).
type arpSocket struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openARPSocket(ifindex int, mac net.HardwareAddr) (*arpSocket, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("interface %d has no Ethernet address (%v): gratuitous ARP needs an Ethernet uplink", ifindex, mac)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET socket for gratuitous ARP: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind AF_PACKET socket to interface %d: %w", ifindex, err)
	}
	return &arpSocket{fd: fd, ifindex: ifindex, mac: mac}, nil
}

// garpFrame builds a gratuitous ARP (sender IP = target IP = ip) from
// mac, broadcast; op is 1 (request, RFC 5227 announcement) or 2 (reply).
func garpFrame(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_ARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:4], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], op)
	ip4 := ip.As4()
	copy(a[8:14], mac)
	copy(a[14:18], ip4[:])
	if op == 2 {
		copy(a[18:24], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	copy(a[24:28], ip4[:])
	return f
}

// announce sends one gratuitous ARP request and one reply for ip.
func (s *arpSocket) announce(ip netip.Addr) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: s.ifindex, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for _, op := range []uint16{1, 2} {
		if err := unix.Sendto(s.fd, garpFrame(s.mac, ip, op), 0, to); err != nil {
			return fmt.Errorf("send gratuitous ARP for %s: %w", ip, err)
		}
	}
	return nil
}

func (s *arpSocket) close() error { return unix.Close(s.fd) }

// parseARP returns the operation, sender MAC and sender IP of an ARP
// frame (for tests and diagnostics).
func parseARP(f []byte) (op uint16, mac net.HardwareAddr, ip netip.Addr, ok bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_ARP {
		return 0, nil, netip.Addr{}, false
	}
	a := f[14:]
	ip, _ = netip.AddrFromSlice(a[14:18])
	return binary.BigEndian.Uint16(a[6:8]), net.HardwareAddr(append([]byte(nil), a[8:14]...)), ip, true
}
