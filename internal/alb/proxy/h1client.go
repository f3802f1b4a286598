package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// h1Client is a small HTTP/1.1 upstream client for the forwarding fast
// path: the handler's own goroutine writes the request and reads the
// response on a pooled connection, where net/http's Transport hands each
// request to a connection's write and read goroutines (two goroutine
// switches each way). Idle connections are kept per endpoint.
type h1Client struct {
	mu      sync.Mutex
	idle    map[string][]*h1Conn
	maxIdle int
	swept   time.Time // last sweep of expired idle connections
}

type h1Conn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	dw   *deadlineWriter
	used time.Time
	// The fast path's deadlines (fastforward.go): the read deadline set,
	// whether a write deadline may be set, and whether roundTrip left
	// them unknown.
	rdl       time.Time
	wdl       bool
	dlUnknown bool
}

func newH1Conn(c net.Conn) *h1Conn {
	dw := &deadlineWriter{c: c}
	return &h1Conn{c: c, br: bufio.NewReaderSize(c, 32<<10), bw: bufio.NewWriterSize(dw, 32<<10), dw: dw}
}

// deadlineWriter gives each write to the upstream connection the
// proxy-send-timeout (nginx's proxy_send_timeout: the longest wait
// between two successful writes) while a request body is sent.
type deadlineWriter struct {
	c       net.Conn
	ctx     context.Context
	timeout time.Duration
	// timedOut records a write that hit the timeout: net/http reports
	// errors while copying a body without their cause.
	timedOut bool
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		_ = w.c.SetWriteDeadline(time.Now().Add(w.timeout))
		if w.ctx.Err() != nil {
			// The request was cancelled meanwhile: keep it cancelled.
			_ = w.c.SetDeadline(time.Unix(1, 0))
		}
	}
	n, err := w.c.Write(p)
	if err != nil && w.timeout > 0 && isTimeout(err) {
		w.timedOut = true
	}
	return n, err
}

func newH1Client() *h1Client { return &h1Client{idle: map[string][]*h1Conn{}, maxIdle: maxIdlePerHost} }

func (cl *h1Client) get(addr string) *h1Conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for l := cl.idle[addr]; len(l) > 0; l = cl.idle[addr] {
		pc := l[len(l)-1]
		cl.idle[addr] = l[:len(l)-1]
		if time.Since(pc.used) < idleTimeout {
			return pc
		}
		pc.c.Close()
	}
	return nil
}

func (cl *h1Client) put(addr string, pc *h1Conn) {
	now := time.Now()
	pc.used = now
	var expired []*h1Conn
	cl.mu.Lock()
	if len(cl.idle[addr]) < cl.maxIdle {
		cl.idle[addr] = append(cl.idle[addr], pc)
		pc = nil
	}
	// Now and then, drop connections idle too long, such as those to
	// endpoints that went away and are never asked for again.
	if now.Sub(cl.swept) > idleTimeout/3 {
		cl.swept = now
		for a, l := range cl.idle {
			keep := l[:0]
			for _, c := range l {
				if now.Sub(c.used) < idleTimeout {
					keep = append(keep, c)
				} else {
					expired = append(expired, c)
				}
			}
			if len(keep) == 0 {
				delete(cl.idle, a)
			} else {
				cl.idle[a] = keep
			}
		}
	}
	cl.mu.Unlock()
	if pc != nil {
		pc.c.Close()
	}
	for _, c := range expired {
		c.c.Close()
	}
}

func (cl *h1Client) purge(addr string) {
	cl.mu.Lock()
	idle := cl.idle[addr]
	delete(cl.idle, addr)
	cl.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// errStale is a pooled connection the backend had closed: nothing of the
// response was read, the request may be sent again on a new connection.
var errStale = errors.New("pooled connection closed by the backend")

// roundTrip sends req (URL.Host is the endpoint) and returns the response;
// its body returns the connection to the pool once read to the end.
// sendTimeout bounds each write of a request body (0: none); a request
// without a body is written at once and gets none.
func (cl *h1Client) roundTrip(req *http.Request, readTimeout, sendTimeout time.Duration) (*http.Response, error) {
	addr := req.URL.Host
	fresh := false
	for {
		var pc *h1Conn
		if !fresh {
			pc = cl.get(addr)
		}
		reused := pc != nil
		if pc == nil {
			d := net.Dialer{Timeout: connectTimeout(req.Context()), KeepAlive: 30 * time.Second}
			c, err := d.DialContext(req.Context(), "tcp", addr)
			if err != nil {
				return nil, err
			}
			pc = newH1Conn(c)
		}
		if req.Body != nil && req.Body != http.NoBody {
			pc.dw.ctx, pc.dw.timeout = req.Context(), sendTimeout
		}
		resp, err := cl.exchange(pc, req, readTimeout)
		if pc.dw.timedOut && err != nil {
			err = fmt.Errorf("proxy-send-timeout %v: %w (%v)", sendTimeout, os.ErrDeadlineExceeded, err)
		}
		pc.dw.ctx, pc.dw.timeout, pc.dw.timedOut = nil, 0, false
		if err == nil {
			return resp, nil
		}
		pc.c.Close()
		if reused && errors.Is(err, errStale) && (req.Body == nil || req.Body == http.NoBody) {
			// The backend closed its idle connections (a pod shutting
			// down closes them all): drop the others, then try once on
			// a new connection; if that cannot connect, the caller tries
			// another endpoint.
			cl.purge(addr)
			fresh = true
			continue
		}
		return nil, err
	}
}

func (cl *h1Client) exchange(pc *h1Conn, req *http.Request, readTimeout time.Duration) (*http.Response, error) {
	ctx := req.Context()
	pc.dlUnknown = true
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.c.SetDeadline(dl)
	} else {
		_ = pc.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var ne net.Error
	if err := req.Write(pc.bw); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if err := pc.bw.Flush(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("write request (proxy-send-timeout): %w", err)
		}
		// Nothing was answered: on a pooled connection, the backend closed it.
		return nil, fmt.Errorf("%w: write request: %v", errStale, err)
	}
	if readTimeout > 0 {
		_ = pc.c.SetReadDeadline(time.Now().Add(readTimeout))
	}
	if _, err := pc.br.Peek(1); err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &ne) && ne.Timeout():
			return nil, err // proxy-read-timeout: 504, no retry
		}
		return nil, fmt.Errorf("%w: %v", errStale, err)
	}
	for {
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // interim answers (100 Continue, 103) are not forwarded
		}
		if readTimeout > 0 {
			_ = pc.c.SetReadDeadline(time.Time{})
		}
		reusable := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
		resp.Body = &h1Body{rc: resp.Body, cl: cl, pc: pc, addr: req.URL.Host, reusable: reusable, stop: context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })}
		return resp, nil
	}
}

// h1Body gives the connection back once the body is read to its end, and
// closes it otherwise.
type h1Body struct {
	rc       io.ReadCloser
	cl       *h1Client
	pc       *h1Conn
	addr     string
	reusable bool
	eof      bool
	done     bool
	stop     func() bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	stopped := b.stop()
	if b.eof && b.reusable && err == nil && stopped {
		b.cl.put(b.addr, b.pc)
		return nil
	}
	b.pc.c.Close()
	return err
}
