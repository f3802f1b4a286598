package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// pingMain is `iks-vpn ping ADDR [COUNT]`, run by `iks vpn check` in a
// short-lived pod (so the packets leave from a pod address, inside the
// local traffic selector): ICMP echo to ADDR; the result goes to the
// termination message.
func pingMain(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: iks-vpn ping ADDR")
	}
	dst := net.ParseIP(args[0])
	if dst == nil || dst.To4() == nil {
		return fmt.Errorf("ping: %q is not an IPv4 address", args[0])
	}
	res, err := ping(dst, 5, 2*time.Second)
	msg := res
	if err != nil {
		msg = err.Error()
	}
	_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
	fmt.Println(msg)
	return err
}

// ping sends up to count echo requests, stopping at the first reply.
func ping(dst net.IP, count int, wait time.Duration) (string, error) {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return "", fmt.Errorf("ping: open an ICMP socket: %w", err)
	}
	defer func() { _ = c.Close() }()
	id := os.Getpid() & 0xffff
	for seq := 1; seq <= count; seq++ {
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("iks-vpn-check")}}
		b, err := m.Marshal(nil)
		if err != nil {
			return "", err
		}
		start := time.Now()
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst}); err != nil {
			return "", fmt.Errorf("ping %s: %w", dst, err)
		}
		deadline := start.Add(wait)
		buf := make([]byte, 1500)
		for time.Now().Before(deadline) {
			_ = c.SetReadDeadline(deadline)
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			rm, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || rm.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq && from.String() == dst.String() {
				return fmt.Sprintf("%s answered in %s", dst, time.Since(start).Round(10*time.Microsecond)), nil
			}
		}
	}
	return "", fmt.Errorf("%s did not answer %d pings", dst, count)
}
