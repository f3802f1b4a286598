package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// helloTimeout bounds the wait for a TLS ClientHello on the HTTPS port.
const helloTimeout = 10 * time.Second

// sniListener is the HTTPS listener with ssl-passthrough enabled: it
// reads each connection's ClientHello, sends connections whose SNI name
// is a passthrough host to that host's backend without decrypting them,
// and hands the others (with the bytes read so far) to the TLS server.
type sniListener struct {
	net.Listener
	h     *Handler
	log   *slog.Logger
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

func newSNIListener(ln net.Listener, h *Handler, log *slog.Logger) *sniListener {
	l := &sniListener{Listener: ln, h: h, log: log, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *sniListener) run() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.closeWith(err)
			return
		}
		go l.sniff(c)
	}
}

// Accept returns the next connection to terminate TLS on.
func (l *sniListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		if l.err != nil && !errors.Is(l.err, net.ErrClosed) {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close closes the listener.
func (l *sniListener) Close() error { return l.closeWith(nil) }

// closeWith closes the listener once; Accept then returns acceptErr (set
// before done is closed, so Accept reads it safely).
func (l *sniListener) closeWith(acceptErr error) error {
	var err error
	l.once.Do(func() {
		l.err = acceptErr
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

func (l *sniListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	var seen bytes.Buffer
	name, ok := serverName(io.TeeReader(c, &seen))
	_ = c.SetReadDeadline(time.Time{})
	if ok {
		if be := l.h.table.Load().Passthrough(name); be != nil {
			l.passThrough(c, seen.Bytes(), be, name)
			return
		}
	}
	select {
	case l.conns <- &prefixConn{Conn: c, prefix: seen.Bytes()}:
	case <-l.done:
		c.Close()
	}
}

// passThrough sends the connection to an endpoint of be, replaying the
// ClientHello.
func (l *sniListener) passThrough(c net.Conn, hello []byte, be *route.Backend, name string) {
	defer c.Close()
	var up net.Conn
	var err error
	for i := 0; i < min(maxDialTries, len(be.Endpoints)); i++ {
		ep := be.Pick()
		if up, err = net.DialTimeout("tcp", ep, defaultConnectTimeout); err == nil {
			break
		}
		be.MarkDown(ep)
	}
	if up == nil {
		l.log.Warn("ssl-passthrough backend unreachable", "host", name, "backend", be.Name, "err", err)
		return
	}
	defer up.Close()
	if _, err := up.Write(hello); err != nil {
		return
	}
	join(c, up)
}

// serverName reads a TLS ClientHello from r and returns its SNI name;
// ok is false when r does not start with a ClientHello.
func serverName(r io.Reader) (name string, ok bool) {
	errStop := errors.New("stop after the ClientHello")
	_ = tls.Server(readOnlyConn{r: r}, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, ok = h.ServerName, true
		return nil, errStop
	}}).Handshake()
	return name, ok
}

// readOnlyConn lets crypto/tls parse a ClientHello and write nothing.
type readOnlyConn struct {
	net.Conn
	r io.Reader
}

func (c readOnlyConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (readOnlyConn) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (readOnlyConn) Close() error                     { return nil }
func (readOnlyConn) LocalAddr() net.Addr              { return nil }
func (readOnlyConn) RemoteAddr() net.Addr             { return nil }
func (readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

// prefixConn reads prefix before the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
