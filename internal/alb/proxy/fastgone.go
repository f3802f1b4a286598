package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The fast path reads nothing from a client while it waits for the
// backend (no background read per request, unlike net/http). Instead,
// once a second, the server peeks at the clients that have waited for
// their backend over a second: one that has closed its connection gets
// its upstream request aborted, as net/http cancelled the request's
// context (and nginx with proxy_ignore_client_abort off).

// goneCheck is how often waiting clients are checked: a client is
// checked once its request has waited one to two of these.
const goneCheck = time.Second

// errClientGone aborts an upstream wait whose client has left.
var errClientGone = errors.New("client closed the connection")

// waitUpstream marks fc as blocked reading pc until waitDone. The time
// it started is the server's tick (one a goneCheck): no clock read.
func (fc *fconn) waitUpstream(pc *h1Conn) {
	fc.waitSince.Store(fc.s.tick.Load())
	fc.waitOn.Store(pc)
}

// waitDone ends the wait; true means the client left meanwhile (pc then
// has a past deadline and must not be reused).
func (fc *fconn) waitDone() bool { return fc.waitOn.Swap(nil) == nil }

// watchClients checks the waiting clients every goneCheck until ctx ends.
func (s *Server) watchClients(ctx context.Context) {
	t := time.NewTicker(goneCheck)
	defer t.Stop()
	var buf [1]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		old := s.tick.Add(1) - 2 // waits begun before the last tick
		s.mu.Lock()
		for fc := range s.conns {
			pc := fc.waitOn.Load()
			if pc == nil || fc.waitSince.Load() > old || !clientGone(fc.c, buf[:]) {
				continue
			}
			if fc.waitOn.CompareAndSwap(pc, nil) {
				_ = pc.c.SetDeadline(time.Unix(1, 0)) // wakes the waiting read
			}
		}
		s.mu.Unlock()
	}
}

// clientGone peeks at the client's socket without blocking: EOF or an
// error means it has gone; data (a pipelined request) or nothing yet
// means it is still there.
func clientGone(c any, buf []byte) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	// Control, not Read: the connection's goroutine may hold the read
	// lock in a read session; a peek that does not wait needs no lock.
	_ = rc.Control(func(fd uintptr) {
		n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || (err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR))
	})
	return gone
}
