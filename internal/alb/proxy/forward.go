package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// hopHeaders are the hop-by-hop headers a proxy must not forward
// (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// defaultConnectTimeout is ingress-nginx's proxy-connect-timeout.
const defaultConnectTimeout = 5 * time.Second

type connectKey struct{}

// forward is the fast path for plain HTTP(S) backends without an upgrade:
// one cloned request, the pooled transport of the route's read timeout,
// the response copied with a pooled buffer (flushed per read when it has
// no length, so streams stream). It skips httputil.ReverseProxy's
// per-request context, rewrite hook and second request copy.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, rt *route.Route, u up, secure bool) {
	be, o := u.be, rt.Opts
	ctx := r.Context()
	if o != nil && o.ConnectTimeout > 0 && o.ConnectTimeout != defaultConnectTimeout {
		ctx = context.WithValue(ctx, connectKey{}, o.ConnectTimeout)
	}
	out := r.Clone(ctx)
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.RequestURI, out.Close = "", false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.URL.Scheme = "http"
	if be.Protocol == route.ProtoHTTPS {
		out.URL.Scheme = "https"
	}
	out.URL.Path, out.URL.RawPath = rt.RewritePath(r.URL.Path), ""
	if u.errPage {
		out.URL.Path = r.URL.Path
	}
	removeHop(out.Header)
	forwardedHeaders(out.Header, r, secure)
	var readTimeout, sendTimeout time.Duration
	if o != nil {
		readTimeout, sendTimeout = o.ReadTimeout, o.SendTimeout
	}
	// Request.Write adds Go's User-Agent when there is none: keep none.
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""}
	}
	out.Header.Del("Expect") // the ALB already answered 100 Continue
	var body *errBody
	if out.Body != nil {
		body = &errBody{rc: out.Body}
		out.Body = body
	}
	var send func(*http.Request) (*http.Response, error)
	if be.Protocol == route.ProtoHTTPS {
		send = h.tr.h1For(true, readTimeout).RoundTrip
	} else {
		send = func(req *http.Request) (*http.Response, error) {
			return h.tr.h1c.roundTrip(req, readTimeout, sendTimeout)
		}
	}
	resp, ep, err := h.tr.roundTripTo(out, be, send, u.pin)
	if err != nil {
		code := http.StatusBadGateway
		var te interface{ Timeout() bool }
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb) || body != nil && errors.As(body.err, &mb):
			http.Error(w, "413 request entity too large (proxy-body-size)", http.StatusRequestEntityTooLarge)
			return
		case r.Context().Err() != nil:
			h.log.Debug("client gone before the upstream answered", "backend", be.Name, "host", r.Host, "path", r.URL.Path)
			return
		case errors.As(err, &te) && te.Timeout():
			code = http.StatusGatewayTimeout
		}
		h.log.Warn("upstream error", "backend", be.Name, "host", r.Host, "path", r.URL.Path, "status", code, "err", err)
		w.WriteHeader(code)
		return
	}
	if o != nil && o.CustomErrors != nil && !u.errPage && o.CustomErrors.Has(resp.StatusCode) {
		resp.Body.Close()
		h.errorPage(w, r, rt, be, resp.StatusCode)
		return
	}
	defer resp.Body.Close()
	removeHop(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	for k := range resp.Trailer {
		dst.Add("Trailer", k)
	}
	if u.aff != nil && ep != u.pin {
		if c := u.aff.Cookie(be, ep, rt.Path); c != "" {
			dst.Add("Set-Cookie", c)
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	if err := copyBody(w, resp.Body, *buf, resp.ContentLength < 0); err != nil && !errors.Is(err, context.Canceled) {
		h.log.Debug("response copy ended early", "backend", be.Name, "err", err)
		// Abort: the client must not take a cut body for a whole one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		dst[k] = vv
	}
}

// copyBody copies src to w; flush sends each read at once (streams).
func copyBody(w http.ResponseWriter, src io.Reader, buf []byte, flush bool) error {
	fl, _ := w.(http.Flusher)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush && fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func removeHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, k := range strings.Split(f, ",") {
			if k = strings.TrimSpace(k); k != "" {
				h.Del(k)
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

func forwardedHeaders(h http.Header, r *http.Request, secure bool) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+ip)
		} else {
			h.Set("X-Forwarded-For", ip)
		}
		h.Set("X-Real-Ip", ip)
	}
	h.Set("X-Forwarded-Host", r.Host)
	if secure {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		h.Set("X-Forwarded-Port", port)
	}
}

// h1For returns the pooled HTTP/1.1 transport for a read timeout (the
// response header timeout), one per distinct value, sharing nothing but
// the settings.
func (t *transport) h1For(tlsUp bool, readTimeout time.Duration) *http.Transport {
	key := h1Key{tls: tlsUp, rt: readTimeout}
	if v, ok := t.byTimeout.Load(key); ok {
		return v.(*http.Transport)
	}
	base := t.h1
	if tlsUp {
		base = t.h1tls
	}
	tr := base.Clone()
	tr.ResponseHeaderTimeout = readTimeout
	v, _ := t.byTimeout.LoadOrStore(key, tr)
	return v.(*http.Transport)
}

type h1Key struct {
	tls bool
	rt  time.Duration
}

var gcOnce sync.Once

// TuneGC sets GOGC to 400 unless GOGC is set: a proxy's heap is small and
// short-lived, so collecting less often trades a few MB for CPU.
func TuneGC() {
	gcOnce.Do(func() {
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(400)
		}
	})
}

// errBody remembers the error reading the client's body (Request.Write
// wraps it without Unwrap), to answer 413 for a body over the limit.
type errBody struct {
	rc  io.ReadCloser
	err error
}

func (b *errBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *errBody) Close() error { return b.rc.Close() }
