package main

import (
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// probeDataplane tells whether the kernel can do ESP: it adds a
// throwaway ESP state in a scratch network namespace (the XFRM socket
// and /proc/net/xfrm_stat exist on kernels without ESP, so their
// presence proves nothing). Without ESP charon uses kernel-libipsec
// (ESP in user space over a TUN device).
func probeDataplane() (string, error) {
	errc := make(chan error, 1)
	go func() {
		// The thread enters a new namespace and is never unlocked: it
		// ends with this goroutine instead of returning to the pool.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare a scratch network namespace: %w", err)
			return
		}
		st := &netlink.XfrmState{
			Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x1ee7,
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, 16)},
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, 32), TruncateLen: 128},
		}
		errc <- netlink.XfrmStateAdd(st)
	}()
	if err := <-errc; err != nil {
		return vpnconn.DataplaneLibipsec, err
	}
	return vpnconn.DataplaneXFRM, nil
}
