// Package route is the routing table of the iks Ingress ALB: which backend
// serves a request, by host and path, built from Ingress objects (Build)
// and swapped atomically by the proxy. A Table is immutable once built, so
// requests read it without locks while a new one is prepared.
package route

import (
	"crypto/tls"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Path types of Ingress v1.
const (
	PathExact                  = "Exact"
	PathPrefix                 = "Prefix"
	PathImplementationSpecific = "ImplementationSpecific"
)

// Backend protocols (annotation backend-protocol).
const (
	ProtoHTTP  = "HTTP"
	ProtoHTTPS = "HTTPS"
	ProtoGRPC  = "GRPC"
	ProtoGRPCS = "GRPCS"
)

// Backend is one Service port and its ready endpoints.
type Backend struct {
	// Name is namespace/service:port, for logs and errors.
	Name string
	// Endpoints are host:port of ready pods; empty means 503.
	Endpoints []string
	// Protocol is one of the Proto constants.
	Protocol string
	// Problem, when set, says why there are no endpoints (e.g. the
	// Service is missing).
	Problem string
	// keys are the affinity cookie values of Endpoints, index by index.
	keys []string
	next atomic.Uint64
	// down holds endpoints that refused a connection: endpoint → time
	// until which Pick skips it (a pod shutting down before its
	// EndpointSlice says so).
	down sync.Map
}

// downFor is how long a failed endpoint is skipped.
const downFor = 2 * time.Second

// Pick returns the next endpoint round-robin, skipping those marked down
// (unless all are), or "" when there is none.
func (b *Backend) Pick() string {
	n := len(b.Endpoints)
	if n == 0 {
		return ""
	}
	first := b.Endpoints[int(b.next.Add(1)-1)%n]
	ep := first
	for i := 0; i < n && b.isDown(ep); i++ {
		ep = b.Endpoints[int(b.next.Add(1)-1)%n]
	}
	if b.isDown(ep) {
		return first
	}
	return ep
}

// Usable reports whether ep is not marked down.
func (b *Backend) Usable(ep string) bool { return !b.isDown(ep) }

func (b *Backend) isDown(ep string) bool {
	v, ok := b.down.Load(ep)
	if !ok {
		return false
	}
	if time.Now().Before(v.(time.Time)) {
		return true
	}
	b.down.Delete(ep)
	return false
}

// MarkDown makes Pick skip ep for a while.
func (b *Backend) MarkDown(ep string) { b.down.Store(ep, time.Now().Add(downFor)) }

// Options are the per-Ingress settings from annotations and the global
// ConfigMap.
type Options struct {
	SSLRedirect      bool // redirect HTTP to HTTPS (TLS hosts by default)
	ForceSSLRedirect bool // redirect even without a TLS section
	HSTS             bool
	RewriteTarget    string // "" for none; may use $1.. of the path regex
	BodyLimit        int64  // bytes; 0 unlimited
	ConnectTimeout   time.Duration
	ReadTimeout      time.Duration
	SendTimeout      time.Duration
	Allow            []netip.Prefix // whitelist-source-range; empty allows all
	AppRoot          string
	Redirect         string // permanent/temporal redirect target
	RedirectCode     int
	CORS             bool
	Affinity         *Affinity // affinity: cookie; nil for none
	// Limits are limit-rps and limit-rpm, per client address (503).
	Limits []*Limiter
	// LimitExempt (limit-whitelist) are client addresses not limited.
	LimitExempt []netip.Prefix
	// CustomErrors are the upstream statuses answered by ErrorBackend
	// (default-backend) or, without one, the ALB's default backend.
	CustomErrors *CodeSet
	// ErrorBackend is the default-backend annotation's Service: it
	// answers CustomErrors and requests whose backend has no endpoint.
	ErrorBackend *Backend
	ClientAuth   *ClientAuth // auth-tls-secret; nil for none

	limitRPS, limitRPM, burstMult int
}

// Route is one Ingress path.
type Route struct {
	Ingress  string // namespace/name
	Host     string
	Path     string
	PathType string
	// Regex is set for use-regex or rewrite-target paths.
	Regex   *regexp.Regexp
	Backend *Backend
	Opts    *Options
	// Canary is the canary Ingress of the same host and path, if any.
	Canary *Canary
}

// matches reports whether the request path p is served by r.
func (r *Route) matches(p string) bool {
	switch {
	case r.Regex != nil:
		return r.Regex.MatchString(p)
	case r.PathType == PathExact:
		return p == r.Path
	case r.PathType == PathPrefix:
		if r.Path == "/" {
			return true
		}
		pre := strings.TrimSuffix(r.Path, "/")
		return p == pre || strings.HasPrefix(p, pre+"/")
	default: // ImplementationSpecific: a string prefix, as nginx's location
		return strings.HasPrefix(p, r.Path)
	}
}

// RewritePath returns the upstream path for request path p.
func (r *Route) RewritePath(p string) string {
	if r.Opts == nil || r.Opts.RewriteTarget == "" {
		return p
	}
	re := r.Regex
	if re == nil {
		re = regexp.MustCompile("(?i)^" + regexp.QuoteMeta(r.Path))
	}
	m := re.FindStringSubmatchIndex(p)
	if m == nil {
		return p
	}
	return string(re.ExpandString(nil, r.Opts.RewriteTarget, p, m))
}

// host is the routes of one host, Exact paths first then by decreasing
// path length.
type host struct {
	routes []*Route
	tls    bool // the host is in some spec.tls
	// clientCert: some Ingress of the host sets auth-tls-secret, so the
	// TLS handshake asks for a client certificate.
	clientCert bool
	// passthrough receives the host's TLS connections undecrypted.
	passthrough *Backend
}

// Table is an immutable routing table.
type Table struct {
	exact    map[string]*host
	wildcard map[string]*host // "*.example.com" stored as "example.com"
	anyHost  *host            // rules without a host
	// Default serves requests no rule matches (nil: 404).
	Default *Route
	certs   map[string]*tls.Certificate
	wcerts  map[string]*tls.Certificate
	// DefaultCert is served for unknown SNI names.
	DefaultCert *tls.Certificate
	// Streams are the tcp-services / udp-services forwards.
	Streams []Stream
	// Rules counts the routes, for logs.
	Rules int
	// AccessLog: one JSON line per request (Global.AccessLog).
	AccessLog bool
}

// Stream is one tcp-services or udp-services entry.
type Stream struct {
	Proto   string // "tcp" or "udp"
	Port    int
	Backend *Backend
}

// Lookup returns the route for host (without port) and path, and whether
// the host is a TLS host. No route and no default gives nil.
func (t *Table) Lookup(hostname, path string) (*Route, bool) {
	h := t.hostFor(strings.ToLower(hostname))
	if h != nil {
		for _, r := range h.routes {
			if r.matches(path) {
				return r, h.tls
			}
		}
		return t.Default, h.tls
	}
	return t.Default, false
}

func (t *Table) hostFor(name string) *host {
	if h, ok := t.exact[name]; ok {
		return h
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if h, ok := t.wildcard[rest]; ok {
			return h
		}
	}
	return t.anyHost
}

// WantsClientCert reports whether TLS connections for the SNI name are
// asked for a client certificate.
func (t *Table) WantsClientCert(sni string) bool {
	h := t.hostFor(strings.ToLower(sni))
	return h != nil && h.clientCert
}

// Passthrough returns the backend TLS connections for the SNI name are
// passed to undecrypted (ssl-passthrough), or nil.
func (t *Table) Passthrough(sni string) *Backend {
	if sni == "" {
		return nil
	}
	h := t.hostFor(strings.ToLower(sni))
	if h == nil {
		return nil
	}
	return h.passthrough
}

// Certificate returns the certificate for an SNI name, else the default.
func (t *Table) Certificate(name string) *tls.Certificate {
	name = strings.ToLower(name)
	if c, ok := t.certs[name]; ok {
		return c
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if c, ok := t.wcerts[rest]; ok {
			return c
		}
	}
	return t.DefaultCert
}
