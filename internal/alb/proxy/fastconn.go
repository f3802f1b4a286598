package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The fast HTTP/1.1 path: the server reads each connection itself, one
// goroutine per connection and nothing else per request. A plain request
// (see fasthead.go) for a route without features that need net/http
// (fastroute.go) is forwarded on a pooled upstream connection and its
// answer copied back (fastforward.go). Any other request hands the
// connection, with every byte read so far, to net/http's server, which
// then serves it to its end exactly as before.

const (
	fastReadBuf  = 8 << 10 // client read buffer: a longer head goes to net/http
	fastWriteBuf = 4 << 10 // as net/http's; longer writes bypass it
	// deadlineSlack: an idle or header deadline is moved only when it is
	// this much nearer than wanted, so most requests set none.
	deadlineSlack = time.Second
)

// Connection states, for graceful shutdown.
const (
	connIdle   int32 = iota // waiting for a request head
	connActive              // serving a request
	connClosed              // closed by shutdown
)

// fconn is one client connection on the fast path.
type fconn struct {
	s       *Server
	c       net.Conn
	tls     *tls.ConnectionState // nil for plain HTTP
	br      *bufio.Reader
	bw      *bufio.Writer
	remote  string // RemoteAddr, as net/http's Request.RemoteAddr
	ip      string // its host part
	head    reqHead
	resp    respHead
	host    string // the last Host, reused while it does not change
	rdl     time.Time
	sess    bool // read in read sessions (see loop)
	partial bool // part of a head is read: the header timeout runs
	state   atomic.Int32
	hdrBuf  []byte // scratch for the upstream request head
	// waitOn is the upstream connection a read waits on, since waitSince
	// (fastgone.go).
	waitOn    atomic.Pointer[h1Conn]
	waitSince atomic.Int64
}

var fconnPool = sync.Pool{New: func() any {
	return &fconn{br: bufio.NewReaderSize(nil, fastReadBuf), bw: bufio.NewWriterSize(nil, fastWriteBuf)}
}}

// serveFast serves c (a TLS connection after its handshake, when st is
// set) until it closes or goes to net/http.
func (s *Server) serveFast(c net.Conn, st *tls.ConnectionState) {
	fc := fconnPool.Get().(*fconn)
	fc.s, fc.c, fc.tls = s, c, st
	fc.br.Reset(c)
	fc.bw.Reset(c)
	fc.remote = c.RemoteAddr().String()
	fc.ip = fc.remote
	if h, _, err := net.SplitHostPort(fc.remote); err == nil {
		fc.ip = h
	}
	if !s.track(fc) {
		c.Close()
		fc.release()
		return
	}
	handed := fc.loop()
	s.untrack(fc)
	if !handed {
		c.Close()
	}
	fc.release()
}

func (fc *fconn) release() {
	fc.br.Reset(nil)
	fc.bw.Reset(nil)
	fc.s, fc.c, fc.tls, fc.host, fc.rdl = nil, nil, nil, "", time.Time{}
	fc.sess, fc.partial = false, false
	fc.state.Store(connIdle)
	fconnPool.Put(fc)
}

// errWouldBlock is what a Read inside a read session returns when the
// next read would wait.
var errWouldBlock = errors.New("read would block")

// loopStep is what serveReady ends with.
type loopStep int

const (
	stepNext    loopStep = iota // served; read the next request
	stepWait                    // inside a read session: wait for more to read
	stepServe                   // a request with a body to read: serve it outside the session
	stepHandOff                 // give the connection to net/http
	stepClose                   // close the connection
)

// loop serves requests; it reports whether the connection went to
// net/http (and must not be closed here). A plain TCP client is read in
// read sessions (rawTCP.readSession): its heads are read and its
// bodyless requests served without a read(2) that finds nothing before
// each request.
func (fc *fconn) loop() bool {
	rt, _ := fc.c.(*rawTCP)
	fc.sess = rt != nil
	for {
		var next loopStep
		if rt != nil {
			if err := rt.readSession(func() bool { next = fc.serveReady(); return next != stepWait }); err != nil {
				return false // a deadline passed or the connection was closed while waiting
			}
		} else {
			next = fc.serveReady()
		}
		if next == stepServe {
			next = fc.serveParsed()
		}
		switch next {
		case stepHandOff:
			return fc.handOff()
		case stepClose:
			return false
		}
	}
}

// serveReady serves requests until a read would wait in a read session
// (stepWait), a request must be served outside it (stepServe), or the
// connection ends or goes to net/http.
func (fc *fconn) serveReady() loopStep {
	for {
		st, err := fc.readHead()
		if err == errWouldBlock {
			return stepWait
		}
		if err != nil {
			return stepClose
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return stepClose // shutting down
		}
		if st == headSlow {
			return stepHandOff
		}
		if fc.sess && !fc.bodyRead() {
			return stepServe
		}
		if next := fc.serveParsed(); next != stepNext {
			return next
		}
	}
}

// bodyRead reports whether the parsed request's body, if any, is all in
// the read buffer.
func (fc *fconn) bodyRead() bool {
	hd := &fc.head
	return !hd.chunked && (hd.contentLength <= 0 || hd.contentLength <= int64(fc.br.Buffered()-hd.n))
}

// serveParsed serves the request whose head was read.
func (fc *fconn) serveParsed() loopStep {
	keep, slow := fc.serveOne()
	if slow {
		return stepHandOff
	}
	// The answer is flushed when the next read would block (see
	// readHead): pipelined answers go out together.
	if !keep || !fc.state.CompareAndSwap(connActive, connIdle) || fc.s.closing.Load() {
		_ = fc.bw.Flush()
		return stepClose
	}
	return stepNext
}

// readHead waits for a complete request head in the read buffer. The
// idle timeout applies before its first byte, the header timeout after
// (from the first byte, also across the waits of a read session).
func (fc *fconn) readHead() (headStatus, error) {
	if !fc.partial {
		fc.deadline(fc.s.idleTimeout)
	}
	for {
		b, _ := fc.br.Peek(fc.br.Buffered())
		if len(b) > 0 {
			st := parseHead(b, &fc.head)
			if st != headMore {
				fc.partial = false
				return st, nil
			}
			if fc.br.Buffered() == fc.br.Size() {
				fc.partial = false
				return headSlow, nil // a long head: net/http has the limits
			}
			if !fc.partial {
				fc.partial = true
				fc.deadline(fc.s.headerTimeout)
			}
		}
		if fc.bw.Buffered() > 0 && fc.bw.Flush() != nil {
			return 0, errors.New("write to the client failed")
		}
		if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
			if err == errWouldBlock {
				return 0, err
			}
			if fc.br.Buffered() > 0 && !isTimeout(err) {
				return headSlow, nil // let net/http answer what it makes of it
			}
			return 0, err
		}
	}
}

// deadline makes the read deadline d from now, give or take
// deadlineSlack; d == 0 clears it.
func (fc *fconn) deadline(d time.Duration) {
	if d == 0 {
		if !fc.rdl.IsZero() {
			fc.rdl = time.Time{}
			_ = fc.c.SetReadDeadline(fc.rdl)
		}
		return
	}
	now := time.Now()
	if want := now.Add(d); fc.rdl.IsZero() || fc.rdl.Before(want.Add(-deadlineSlack)) || fc.rdl.After(want) {
		fc.rdl = want
		_ = fc.c.SetReadDeadline(want)
	}
}

// handOff gives the connection and the bytes read so far to net/http.
func (fc *fconn) handOff() bool {
	if fc.bw.Flush() != nil {
		return false
	}
	fc.deadline(0)
	var prefix []byte
	if n := fc.br.Buffered(); n > 0 {
		b, _ := fc.br.Peek(n)
		prefix = append([]byte(nil), b...)
	}
	fc.s.untrack(fc)
	return fc.s.fallback.give(&handedConn{prefixConn: prefixConn{Conn: fc.c, prefix: prefix}, tls: fc.tls})
}

// hostString returns the Host header as a string, reusing the last one.
func (fc *fconn) hostString() string {
	if string(fc.head.host) != fc.host {
		fc.host = string(fc.head.host)
	}
	return fc.host
}

// hostname is host without its port, as net.SplitHostPort gives it.
func hostname(host string) (name, port string) {
	if strings.LastIndexByte(host, ':') < 0 || strings.HasSuffix(host, "]") {
		return host, ""
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		return h, p
	}
	return host, ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
