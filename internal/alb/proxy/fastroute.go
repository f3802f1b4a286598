package proxy

import (
	"net/netip"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// fastReq is what the fast path decided for one request.
type fastReq struct {
	rt       *route.Route
	be       *route.Backend
	host     string // the Host header
	hostname string
	port     string // of the Host header, "" for none
	secure   bool   // TLS, or X-Forwarded-Proto: https
	hsts     bool   // add Strict-Transport-Security
	limit    int64  // proxy-body-size for a chunked body, 0 none
	readTO   time.Duration
	sendTO   time.Duration
	connTO   time.Duration
}

// fastRoute routes the parsed head and reports whether the fast path
// serves it: a plain HTTP backend with endpoints, and none of the
// features whose handling lives in the net/http handler (redirects,
// rate limits, client certificates, a refused whitelist-source-range,
// CORS, custom errors, session affinity, canaries, a Content-Length over
// proxy-body-size, no route at all). Nothing here has side effects, so a
// request it refuses is served by Handler.serve from the start.
func (fc *fconn) fastRoute(t *route.Table, fr *fastReq) bool {
	hd := &fc.head
	fr.host = fc.hostString()
	fr.hostname, fr.port = hostname(fr.host)
	rt, tlsHost := t.Lookup(fr.hostname, string(hd.path))
	if rt == nil || rt.Canary != nil {
		return false
	}
	fr.rt, fr.be = rt, rt.Backend
	if fr.be == nil || len(fr.be.Endpoints) == 0 || fr.be.Protocol != route.ProtoHTTP {
		return false
	}
	fr.secure = fc.tls != nil || eqFold(hd.xfp, "https")
	fr.connTO = defaultConnectTimeout
	o := rt.Opts
	if o == nil {
		return true
	}
	switch {
	case !fr.secure && ((tlsHost && o.SSLRedirect) || o.ForceSSLRedirect),
		len(o.Limits) > 0, o.ClientAuth != nil, o.Redirect != "", o.CORS,
		o.AppRoot != "" && string(hd.path) == "/",
		o.CustomErrors != nil, o.Affinity != nil,
		o.BodyLimit > 0 && hd.contentLength > o.BodyLimit,
		len(o.Allow) > 0 && !fc.allowed(o.Allow):
		return false
	}
	fr.hsts = fr.secure && tlsHost && o.HSTS
	if hd.chunked {
		fr.limit = o.BodyLimit
	}
	fr.readTO, fr.sendTO = o.ReadTimeout, o.SendTimeout
	if o.ConnectTimeout > 0 {
		fr.connTO = o.ConnectTimeout
	}
	return true
}

func (fc *fconn) allowed(allow []netip.Prefix) bool { return allowed(allow, fc.remote) }

// serveOne serves the parsed request on the fast path; slow reports
// that it did nothing and net/http must serve the request instead.
func (fc *fconn) serveOne() (keep, slow bool) {
	h := fc.s.H
	t := h.table.Load()
	var fr fastReq
	if !fc.fastRoute(t, &fr) {
		return false, true
	}
	h.Requests.Add(1)
	h.fastRequests.Add(1)
	if !t.AccessLog || h.Access == nil {
		return fc.forward(&fr).keep, false
	}
	hd := &fc.head
	start := time.Now()
	e := &accessEntry{Remote: fc.remote, Host: fr.host, Method: string(hd.method), URI: string(hd.target), Proto: "HTTP/1.1",
		Agent: string(hd.ua), Ingress: fr.rt.Ingress, Upstream: fr.be.Name}
	res := fc.forward(&fr)
	e.Time, e.Status, e.Bytes, e.Duration = start.UTC().Format(time.RFC3339Nano), res.status, res.bytes, time.Since(start).Seconds()
	h.Access.write(e)
	return res.keep, false
}
