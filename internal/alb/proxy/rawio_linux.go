//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawTCP is a TCP connection whose Read and Write make their read(2)
// and write(2) without the runtime's blocking-syscall bookkeeping
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
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch e {
		case 0:
			r.rn = int(n)
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
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wbuf[r.wn])), uintptr(len(r.wbuf)-r.wn))
		switch e {
		case 0:
			r.wn += int(n)
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
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.pend[0])), uintptr(len(r.pend)))
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
