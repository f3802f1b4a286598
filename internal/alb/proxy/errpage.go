package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// errorPage answers an upstream status listed in custom-http-errors as
// ingress-nginx does: the request goes to the Ingress's default-backend
// Service (else the ALB's default backend) with X-Code, X-Format,
// X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name and
// X-Service-Port, and its answer replaces the upstream's. Without a
// default backend, or when it fails, the ALB answers the status itself.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, rt *route.Route, failed *route.Backend, code int) {
	eb := rt.Opts.ErrorBackend
	if eb == nil {
		if d := h.table.Load().Default; d != nil {
			eb = d.Backend
		}
	}
	if eb == nil || len(eb.Endpoints) == 0 {
		http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
		return
	}
	method := http.MethodGet
	if r.Method == http.MethodHead {
		method = http.MethodHead
	}
	ns, ing, _ := strings.Cut(rt.Ingress, "/")
	svc, port := failed.Name, ""
	if i := strings.LastIndexByte(svc, ':'); i >= 0 {
		svc, port = svc[:i], svc[i+1:]
	}
	if _, name, ok := strings.Cut(svc, "/"); ok {
		svc = name
	}
	format := r.Header.Get("Accept")
	if format == "" {
		format = "text/html"
	}
	hd := http.Header{"X-Code": {strconv.Itoa(code)}, "X-Format": {format}, "X-Original-Uri": {r.RequestURI},
		"X-Namespace": {ns}, "X-Ingress-Name": {ing}, "X-Service-Name": {svc}, "X-Service-Port": {port}, "User-Agent": {""}}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		hd.Set("X-Request-Id", id)
	}
	out := (&http.Request{Method: method, URL: &url.URL{Scheme: "http", Path: r.URL.Path, RawQuery: r.URL.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: hd, Host: r.Host}).WithContext(r.Context())
	var readTimeout time.Duration
	if rt.Opts != nil {
		readTimeout = rt.Opts.ReadTimeout
	}
	resp, _, err := h.tr.roundTripTo(out, eb, func(req *http.Request) (*http.Response, error) {
		return h.tr.h1c.roundTrip(req, readTimeout, 0)
	}, "")
	if err != nil {
		h.log.Warn("custom error backend failed", "backend", eb.Name, "status", code, "err", err)
		http.Error(w, fmt.Sprintf("%d %s", code, http.StatusText(code)), code)
		return
	}
	defer resp.Body.Close()
	removeHop(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	_ = copyBody(w, resp.Body, *buf, false)
}
