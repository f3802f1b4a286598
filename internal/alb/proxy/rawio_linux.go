//go:build linux && (amd64 || arm64)

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawTCP is a TCP connection whose Read and Write make their recv(2)
// and send(2) without the runtime's blocking-syscall bookkeeping
// (entersyscall/exitsyscall): the socket is non-blocking, so neither
// call can block, and waiting stays with the runtime's poller through
// syscall.RawConn (deadlines and Close work as on net.TCPConn). On the
// proxy's hot path every request makes four of these calls; measured in
// README "Engine". Everything else (addresses, deadlines, CloseWrite,
// ReadFrom/WriteTo with splice and sendfile) is net.TCPConn's own.
//
// Like net.Conn it allows one Read and one Write at a time, each from
// its own goroutine.
type rawTCP struct {
	*net.TCPConn
	rc syscall.RawConn

	rbuf    []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(uintptr) bool
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool

	// hold, pend: see holdNextWrite.
	hold        bool
	pend        []byte
	pendBlocked bool          // pend met a full send buffer
	pendErr     syscall.Errno // writing pend failed

	// sfd, inSess, drained, inq, msg, iov, cmsg: see readSession.
	sfd     uintptr
	inSess  bool
	drained bool
	inq     int8 // TCP_INQ on the socket: 0 not tried yet, 1 on, -1 refused
	msg     syscall.Msghdr
	iov     syscall.Iovec
	cmsg    [32]byte
}

// readSession calls step inside one wait of the poller for r's reads:
// first at once, then each time r turns readable, until step reports
// that it is done. Within step, Read and Write make their system calls
// directly; a Read that would wait returns errWouldBlock, and step then
// returns false to wait. The poller's readiness is reset only once, at
// the start (Read resets it before each read, so it must try a read(2)
// before it may wait): within the session, a read whose TCP_INQ hint
// says nothing is left (no byte, no FIN) lets the next Read wait
// without a read(2) that would find nothing, which is what the client
// side of a keep-alive connection meets before each request (as nginx's
// edge-triggered reads with EPOLLRDHUP). The session holds r's read
// lock: nothing else may Read r meanwhile. It returns the poller's
// error (a deadline, Close) when waiting fails.
func (r *rawTCP) readSession(step func() bool) error {
	return r.rc.Read(func(fd uintptr) bool {
		if r.inq == 0 {
			r.inq = -1
			if syscall.SetsockoptInt(int(fd), syscall.SOL_TCP, unix.TCP_INQ, 1) == nil {
				r.inq = 1
			}
		}
		r.sfd, r.inSess, r.drained = fd, true, false
		done := step()
		r.inSess = false
		return done
	})
}

// sessRead is Read inside a read session.
func (r *rawTCP) sessRead(p []byte) (int, error) {
	if r.drained {
		return 0, errWouldBlock
	}
	for {
		n, left, e := r.recvInq(p)
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			r.drained = left == 0
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, r.opError("read", os.NewSyscallError("read", e))
	}
}

// recvInq is recvmsg(2) into p; left is the kernel's TCP_INQ hint of
// what is still to read after it (1 for a FIN not yet read), -1 when
// not known.
func (r *rawTCP) recvInq(p []byte) (n, left int, errno syscall.Errno) {
	if r.inq != 1 {
		n, errno = sysRecv(r.sfd, p)
		return n, -1, errno
	}
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov, r.msg.Iovlen = &r.iov, 1
	r.msg.Control = &r.cmsg[0]
	r.msg.SetControllen(len(r.cmsg))
	m, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, r.sfd, uintptr(unsafe.Pointer(&r.msg)), 0)
	r.iov.Base, r.msg.Iov, r.msg.Control = nil, nil, nil
	if e != 0 {
		return 0, -1, e
	}
	left = -1
	const hdr = syscall.SizeofCmsghdr
	if r.msg.Controllen >= hdr+4 {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.cmsg[0]))
		if h.Level == syscall.SOL_TCP && h.Type == unix.TCP_CM_INQ && h.Len >= hdr+4 {
			left = int(*(*int32)(unsafe.Pointer(&r.cmsg[hdr])))
		}
	}
	return int(m), left, 0
}

// sessWrite is Write inside a read session: it waits (for room in the
// send buffer) only as Write does.
func (r *rawTCP) sessWrite(p []byte) (int, error) {
	for n := 0; n < len(p); {
		m, e := sysSend(r.sfd, p[n:])
		switch e {
		case 0:
			n += m
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			m, err := r.pollWrite(p[n:])
			return n + m, err
		}
		return n, r.opError("write", os.NewSyscallError("write", e))
	}
	return len(p), nil
}

// holdNextWrite makes the next Write keep its bytes (copied) and send
// them at the start of the next Read, after the poller's readiness is
// reset, so that this Read then waits for the answer without a first
// read(2) that would find nothing (what a request sent upstream meets).
// Only for a connection where nothing can arrive before the answer to
// those bytes: the readiness of bytes already arrived is lost by the
// reset. The next call after that Write must be Read.
func (r *rawTCP) holdNextWrite() { r.hold = true }

// rawConn returns c with raw reads and writes when it is a TCP
// connection, c itself otherwise.
func rawConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawTCP{TCPConn: tc, rc: rc}
	r.readFn, r.writeFn = r.doRead, r.doWrite
	return r
}

func (r *rawTCP) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.inSess {
		return r.sessRead(p)
	}
	r.rbuf, r.rn, r.rerr = p, 0, 0
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rbuf = nil
	if err == nil && (r.pendBlocked || r.pendErr != 0) {
		return r.afterPend(p)
	}
	r.pend = r.pend[:0]
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case errno != 0:
		return 0, r.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawTCP) doRead(fd uintptr) bool {
	if len(r.pend) > 0 {
		// Sent whole: wait for the answer. Otherwise Read finishes.
		return !r.writePend(fd)
	}
	for {
		n, e := sysRecv(fd, r.rbuf)
		switch e {
		case 0:
			r.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rerr = e
		return true
	}
}

func (r *rawTCP) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.hold {
		r.hold = false
		r.pend = append(r.pend[:0], p...)
		return len(p), nil
	}
	if r.inSess {
		return r.sessWrite(p)
	}
	return r.pollWrite(p)
}

// pollWrite writes p, waiting with the poller when the send buffer is
// full.
func (r *rawTCP) pollWrite(p []byte) (int, error) {
	r.wbuf, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n, errno := r.wn, r.werr
	r.wbuf = nil
	switch {
	case err != nil:
		return n, r.opError("write", err)
	case errno != 0:
		return n, r.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

func (r *rawTCP) doWrite(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		n, e := sysSend(fd, r.wbuf[r.wn:])
		switch e {
		case 0:
			r.wn += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.werr = e
		return true
	}
	return true
}

// writePend sends the held bytes; it reports whether all went out.
func (r *rawTCP) writePend(fd uintptr) bool {
	for len(r.pend) > 0 {
		n, e := sysSend(fd, r.pend)
		switch e {
		case 0:
			r.pend = r.pend[:copy(r.pend, r.pend[n:])]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.pendBlocked = true
			return false
		}
		r.pendErr = e
		r.pend = r.pend[:0]
		return false
	}
	return true
}

// afterPend ends a Read whose held bytes could not be sent at once: the
// rest is written as any Write (waiting for room), then Read goes on.
func (r *rawTCP) afterPend(p []byte) (int, error) {
	if errno := r.pendErr; errno != 0 {
		r.pendErr = 0
		return 0, r.opError("write", os.NewSyscallError("write", errno))
	}
	r.pendBlocked = false
	rest := r.pend
	r.pend = nil
	_, err := r.Write(rest)
	r.pend = rest[:0]
	if err != nil {
		return 0, err
	}
	return r.Read(p)
}

// opError wraps err as net.TCPConn does, so that callers see the same
// error types (net.Error with Timeout, net.ErrClosed, ECONNRESET).
func (r *rawTCP) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: err}
}

// sysRecv is recv(2) of p: on a socket it goes straight to the socket
// layer, without read(2)'s file-layer steps (measured in README "Engine").
func sysRecv(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), e
}

// sysSend is send(2) of p, with MSG_NOSIGNAL: a peer gone is EPIPE, no
// SIGPIPE.
func sysSend(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}
