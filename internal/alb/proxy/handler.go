// Package proxy is the HTTP(S) engine of the iks Ingress ALB. Each
// request is looked up in the current routing table (swapped atomically,
// so a change never drops a request or an open connection). Plain
// HTTP/1.1 requests to plain backends take a fast path that reads and
// writes the connections itself (fastconn.go); everything else (HTTP/2,
// upgrades, gRPC, the annotation features handled here) is served by a
// net/http server whose handler forwards with a tuned reverse proxy:
// pooled upstream connections, pooled copy buffers, HTTP/1.1 upgrades
// (WebSockets) and h2c for gRPC backends.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/iks-dev/iks/internal/alb/route"
)

// HSTSValue is ingress-nginx's default Strict-Transport-Security.
const HSTSValue = "max-age=15724800; includeSubDomains"

type ctxKey struct{}

// target is what the handler hands to the transport through the context.
type target struct {
	route *route.Route
	up
	used string // the endpoint that answered
}

// up is the upstream chosen for a request: the route's backend or its
// canary's, and the session affinity that applies with the pinned
// endpoint (pin, "" for none).
type up struct {
	be  *route.Backend
	aff *route.Affinity
	pin string
	// errPage: be is the default-backend annotation's Service standing
	// in for a backend without endpoints (no rewrite, no custom errors).
	errPage bool
}

// Handler routes and proxies requests.
type Handler struct {
	table     atomic.Pointer[route.Table]
	rp        *httputil.ReverseProxy
	tr        *transport
	log       *slog.Logger
	httpsPort int
	// Requests counts served requests (for metrics and tests).
	Requests atomic.Uint64
	// fastRequests counts those the fast path served (for tests).
	fastRequests atomic.Uint64
	// Access receives the JSON access log when the table enables it.
	Access *AccessLog
}

// NewHandler returns a handler with an empty table. httpsPort is the
// public HTTPS port used in redirects (443 gives no port in the URL).
func NewHandler(log *slog.Logger, httpsPort int) *Handler {
	h := &Handler{log: log, httpsPort: httpsPort}
	h.table.Store(&route.Table{})
	h.tr = newTransport()
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      h.tr,
		BufferPool:     bufferPool{},
		ErrorHandler:   h.proxyError,
		ErrorLog:       nil,
		ModifyResponse: h.modifyResponse,
	}
	return h
}

// Swap installs a new routing table; requests already routed keep theirs.
func (h *Handler) Swap(t *route.Table) { h.table.Store(t) }

// Table returns the current routing table.
func (h *Handler) Table() *route.Table { return h.table.Load() }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Requests.Add(1)
	t := h.table.Load()
	if t.AccessLog && h.Access != nil {
		h.logged(w, r, t, func(lw http.ResponseWriter) { h.serve(lw, r, t) })
		return
	}
	h.serve(w, r, t)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, t *route.Table) {
	hostname := r.Host
	if hn, _, err := net.SplitHostPort(hostname); err == nil {
		hostname = hn
	}
	rt, tlsHost := t.Lookup(hostname, r.URL.Path)
	if rt == nil {
		http.Error(w, "404 page not found: no Ingress rule matches this host and path", http.StatusNotFound)
		return
	}
	o := rt.Opts
	secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	if o != nil {
		if !secure && ((tlsHost && o.SSLRedirect) || o.ForceSSLRedirect) {
			h.redirectHTTPS(w, r, hostname)
			return
		}
		if secure && tlsHost && o.HSTS {
			w.Header().Set("Strict-Transport-Security", HSTSValue)
		}
		if len(o.Limits) > 0 && !withinLimits(o.Limits, o.LimitExempt, r.RemoteAddr) {
			http.Error(w, "503 service temporarily unavailable: request rate limit exceeded (limit-rps)", http.StatusServiceUnavailable)
			return
		}
		if o.ClientAuth != nil && !clientAuth(w, r, o.ClientAuth) {
			return
		}
		if len(o.Allow) > 0 && !allowed(o.Allow, r.RemoteAddr) {
			http.Error(w, "403 forbidden: client address not in whitelist-source-range", http.StatusForbidden)
			return
		}
		if o.Redirect != "" {
			http.Redirect(w, r, o.Redirect, o.RedirectCode)
			return
		}
		if o.AppRoot != "" && r.URL.Path == "/" {
			http.Redirect(w, r, o.AppRoot, http.StatusFound)
			return
		}
		if o.CORS {
			cors(w, r)
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if o.BodyLimit > 0 {
			if r.ContentLength > o.BodyLimit {
				http.Error(w, "413 request entity too large (proxy-body-size)", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, o.BodyLimit)
		}
	}
	u := up{be: rt.Backend}
	if o != nil {
		u.aff = o.Affinity
	}
	if c := rt.Canary; c != nil && c.Take(r) {
		u.be, u.aff = c.Backend, c.Affinity
	}
	if (u.be == nil || len(u.be.Endpoints) == 0) && o != nil && o.ErrorBackend != nil && len(o.ErrorBackend.Endpoints) > 0 {
		u = up{be: o.ErrorBackend, errPage: true}
	}
	if u.be == nil || len(u.be.Endpoints) == 0 {
		http.Error(w, "503 service unavailable: the backend has no ready endpoint", http.StatusServiceUnavailable)
		return
	}
	if u.aff != nil {
		u.pin = u.aff.Pinned(r, u.be)
	}
	if !isUpgrade(r) && !isGRPC(u.be) {
		h.forward(w, r, rt, u, secure)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, &target{route: rt, up: u})
	h.rp.ServeHTTP(w, r.WithContext(ctx))
}

// modifyResponse sets the affinity cookie on upgraded and gRPC responses.
func (h *Handler) modifyResponse(resp *http.Response) error {
	if tg, ok := resp.Request.Context().Value(ctxKey{}).(*target); ok && tg.aff != nil && tg.used != tg.pin {
		if c := tg.aff.Cookie(tg.be, tg.used, tg.route.Path); c != "" {
			resp.Header.Add("Set-Cookie", c)
		}
	}
	return nil
}

// rewrite sets the upstream URL (a placeholder host; the transport picks
// the endpoint) and the forwarding headers.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	tg := pr.In.Context().Value(ctxKey{}).(*target)
	scheme := "http"
	if tg.be.Protocol == route.ProtoHTTPS || tg.be.Protocol == route.ProtoGRPCS {
		scheme = "https"
	}
	pr.Out.URL.Scheme = scheme
	pr.Out.URL.Host = "backend.invalid"
	pr.Out.URL.Path = tg.route.RewritePath(pr.In.URL.Path)
	pr.Out.URL.RawPath = ""
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		pr.Out.Header.Set("X-Real-IP", ip)
	}
	if _, port, err := net.SplitHostPort(pr.In.Host); err == nil {
		pr.Out.Header.Set("X-Forwarded-Port", port)
	}
}

func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	tg, _ := r.Context().Value(ctxKey{}).(*target)
	name := ""
	if tg != nil {
		name = tg.be.Name
	}
	code := http.StatusBadGateway
	switch {
	case r.Context().Err() != nil:
		// The client went away: nothing to answer, nothing wrong upstream.
		h.log.Debug("client gone before the upstream answered", "backend", name, "host", r.Host, "path", r.URL.Path)
		return
	}
	h.log.Warn("upstream error", "backend", name, "host", r.Host, "path", r.URL.Path, "status", code, "err", err)
	w.WriteHeader(code)
}

func (h *Handler) redirectHTTPS(w http.ResponseWriter, r *http.Request, hostname string) {
	u := url.URL{Scheme: "https", Host: hostname, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if h.httpsPort != 443 && h.httpsPort != 0 {
		u.Host = net.JoinHostPort(hostname, strconv.Itoa(h.httpsPort))
	}
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	http.Redirect(w, r, u.String(), code)
}

func allowed(allow []netip.Prefix, remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func cors(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Credentials", "true")
	hd.Set("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization")
	hd.Set("Access-Control-Max-Age", "1728000")
}

func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func isGRPC(be *route.Backend) bool {
	return be.Protocol == route.ProtoGRPC || be.Protocol == route.ProtoGRPCS
}

// bufferPool reuses the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
