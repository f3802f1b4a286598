package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/iks-dev/iks/internal/alb/route"
)

// Pool sizes: far above http.Transport's default of 2 idle connections per
// host, which makes a busy proxy open and close upstream connections.
const (
	maxIdlePerHost = 1024
	maxIdle        = 8192
	idleTimeout    = 90 * time.Second
	maxDialTries   = 3
	// maxTries bounds the endpoints one request tries (those that refuse
	// a connection are skipped for a while, see route.Backend.MarkDown).
	maxTries = 8
)

// transport picks a ready endpoint of the route's backend for each request
// and retries another one when the connection cannot be made (a pod that
// just went away), before anything of the request was sent.
type transport struct {
	h1, h1tls *http.Transport
	h2c, h2   *http2.Transport
	byTimeout sync.Map // h1Key → *http.Transport
	h1c       *h1Client
}

func newTransport() *transport {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: connectTimeout(ctx), KeepAlive: 30 * time.Second}
		return d.DialContext(ctx, network, addr)
	}
	h1 := func(tc *tls.Config) *http.Transport {
		return &http.Transport{
			DialContext: dial, TLSClientConfig: tc, MaxIdleConns: maxIdle, MaxIdleConnsPerHost: maxIdlePerHost,
			IdleConnTimeout: idleTimeout, DisableCompression: true, ForceAttemptHTTP2: false,
			WriteBufferSize: 32 << 10, ReadBufferSize: 32 << 10, ExpectContinueTimeout: time.Second,
		}
	}
	// Upstream TLS is not verified, as nginx's proxy_ssl_verify off default.
	insecure := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // backends use cluster-internal certs
	return &transport{
		h1: h1(nil), h1tls: h1(insecure), h1c: newH1Client(),
		h2c: &http2.Transport{AllowHTTP: true, DisableCompression: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return dial(ctx, network, addr)
			}},
		h2: &http2.Transport{TLSClientConfig: insecure, DisableCompression: true},
	}
}

func connectTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(connectKey{}).(time.Duration); ok {
		return d
	}
	if tg, ok := ctx.Value(ctxKey{}).(*target); ok && tg.route.Opts != nil && tg.route.Opts.ConnectTimeout > 0 {
		return tg.route.Opts.ConnectTimeout
	}
	return defaultConnectTimeout
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tg, ok := req.Context().Value(ctxKey{}).(*target)
	if !ok {
		return nil, errors.New("no route for the upstream request")
	}
	be := tg.be
	rt := http.RoundTripper(t.h1)
	switch be.Protocol {
	case route.ProtoHTTPS:
		rt = t.h1tls
	case route.ProtoGRPC:
		rt = t.h2c
	case route.ProtoGRPCS:
		rt = t.h2
	}
	resp, ep, err := t.roundTripTo(req, be, rt.RoundTrip, tg.pin)
	tg.used = ep
	return resp, err
}

// roundTripTo sends req to an endpoint of be through rt, retrying other
// endpoints when the connection cannot be made, and returns the endpoint
// that answered. pin, when set and not marked down, is tried first
// (session affinity).
func (t *transport) roundTripTo(req *http.Request, be *route.Backend, rt func(*http.Request) (*http.Response, error), pin string) (*http.Response, string, error) {
	replayable := req.Body == nil || req.Body == http.NoBody
	tries := min(maxTries, len(be.Endpoints))
	var err error
	for i := 0; i < tries; i++ {
		var ep string
		if i == 0 && pin != "" && be.Usable(pin) {
			ep = pin
		} else {
			ep = be.Pick()
		}
		if ep == "" {
			break
		}
		req.URL.Host = ep
		var resp *http.Response
		resp, err = rt(req)
		if err == nil {
			return resp, ep, nil
		}
		// Another endpoint may take the request when this one could not be
		// reached or closed the connection without answering.
		var op *net.OpError
		isDial := errors.As(err, &op) && op.Op == "dial"
		if isDial || errors.Is(err, errStale) {
			be.MarkDown(ep)
		}
		if !replayable || !(isDial || errors.Is(err, errStale)) || req.Context().Err() != nil {
			break
		}
	}
	if err == nil {
		err = fmt.Errorf("backend %s has no ready endpoint", be.Name)
	}
	return nil, "", fmt.Errorf("backend %s: %w", be.Name, err)
}
