package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// acceptLoop accepts the connections of l for the fast path (TLS ones
// after their handshake) until l is closed.
func (s *Server) acceptLoop(l net.Listener, tlsOn bool) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) {
				// As net/http: back off on EMFILE and the like.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c = rawConn(c)
		if tlsOn {
			go s.serveTLS(c)
		} else {
			go s.serveFast(c, nil)
		}
	}
}

// serveTLS completes the handshake; h2 connections go to net/http's
// HTTP/2 server, HTTP/1.1 ones to the fast path.
func (s *Server) serveTLS(c net.Conn) {
	tc := tls.Server(c, s.HTTPS.TLSConfig)
	_ = tc.SetDeadline(time.Now().Add(s.headerTimeout))
	if err := tc.HandshakeContext(context.Background()); err != nil {
		s.log.Debug("TLS handshake error", "remote", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == "h2" {
		if !s.h2.give(tc) {
			tc.Close()
		}
		return
	}
	s.serveFast(tc, &st)
}

func (s *Server) track(fc *fconn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[fc] = struct{}{}
	return true
}

func (s *Server) untrack(fc *fconn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

// shutdownFast closes the fast path's idle connections and waits for
// the active ones to finish their request, until ctx ends.
func (s *Server) shutdownFast(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		for fc := range s.conns {
			if fc.state.CompareAndSwap(connIdle, connClosed) {
				fc.c.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for fc := range s.conns {
				fc.c.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// connListener is a listener fed by the fast path: the connections it
// hands to net/http's servers.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// give hands c to the server; false when the listener is closed.
func (l *connListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// handedConn is a connection the fast path gave to net/http: the bytes
// it read first, and its TLS state (net/http sees no *tls.Conn).
type handedConn struct {
	prefixConn
	tls *tls.ConnectionState
}

type tlsStateKey struct{}

// handedContext keeps a handed TLS connection's state for withTLS.
func handedContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*handedConn); ok && hc.tls != nil {
		return context.WithValue(ctx, tlsStateKey{}, hc.tls)
	}
	return ctx
}

// withTLS gives requests of handed TLS connections their Request.TLS.
func withTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r.TLS = st
			}
		}
		h.ServeHTTP(w, r)
	})
}

// CloseWrite half-closes the connection, so that net/http's error
// answers (400, 431) are read before the close resets the connection.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
