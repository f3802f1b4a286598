package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// cipherSuites is the hardened TLS 1.2 list: ECDHE with AEAD ciphers only
// (TLS 1.3 suites are not configurable and all strong).
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns the server TLS settings: SNI from the current table,
// TLS 1.2+, HTTP/2 and HTTP/1.1 by ALPN.
func (h *Handler) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		NextProtos:   []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := h.table.Load().Certificate(hello.ServerName); c != nil {
				return c, nil
			}
			return nil, fmt.Errorf("no certificate for %q and no default certificate", hello.ServerName)
		},
	}
}

// Server is the HTTP and HTTPS listeners of one ALB. It accepts every
// connection itself and serves plain HTTP/1.1 requests on its fast path
// (fastconn.go); HTTP serves the HTTP/1 connections the fast path hands
// over (with the bytes it read), HTTPS the TLS connections that chose h2.
type Server struct {
	H            *Handler
	HTTP, HTTPS  *http.Server
	httpL, tlsL  net.Listener
	log          *slog.Logger
	shutdownWait time.Duration
	// Passthrough (--enable-ssl-passthrough) reads the SNI name of each
	// HTTPS connection before TLS, to pass ssl-passthrough hosts through
	// undecrypted. Set it before Serve.
	Passthrough bool

	fallback, h2               *connListener
	idleTimeout, headerTimeout time.Duration
	closing                    atomic.Bool
	mu                         sync.Mutex
	conns                      map[*fconn]struct{} // the fast path's connections
	tick                       atomic.Int64        // goneCheck periods (fastgone.go)
}

// Listen opens the HTTP and HTTPS listeners (addresses such as ":8080").
func Listen(h *Handler, httpAddr, httpsAddr string, log *slog.Logger) (*Server, error) {
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s: %w", httpAddr, err)
	}
	tl, err := net.Listen("tcp", httpsAddr)
	if err != nil {
		hl.Close()
		return nil, fmt.Errorf("listen for HTTPS on %s: %w", httpsAddr, err)
	}
	mk := func() *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 60 * time.Second, IdleTimeout: 75 * time.Second,
			MaxHeaderBytes: 1 << 20, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	}
	s := &Server{H: h, HTTP: mk(), HTTPS: mk(), httpL: hl, tlsL: tl, log: log, shutdownWait: 10 * time.Second,
		fallback: newConnListener(hl.Addr()), h2: newConnListener(tl.Addr()), conns: map[*fconn]struct{}{}}
	s.idleTimeout, s.headerTimeout = s.HTTP.IdleTimeout, s.HTTP.ReadHeaderTimeout
	s.HTTP.Handler, s.HTTP.ConnContext = withTLS(h), handedContext
	s.HTTPS.TLSConfig = h.TLSConfig()
	if err := http2.ConfigureServer(s.HTTPS, &http2.Server{MaxConcurrentStreams: 1000}); err != nil {
		return nil, fmt.Errorf("configure HTTP/2: %w", err)
	}
	// Hosts with auth-tls-secret ask for a client certificate; the
	// handler verifies it and answers 400 (as nginx) rather than failing
	// the handshake.
	base := s.HTTPS.TLSConfig
	withCert := base.Clone()
	withCert.ClientAuth = tls.RequestClientCert
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if h.table.Load().WantsClientCert(hello.ServerName) {
			return withCert, nil
		}
		return nil, nil
	}
	return s, nil
}

// Addrs returns the bound HTTP and HTTPS addresses.
func (s *Server) Addrs() (httpAddr, httpsAddr net.Addr) { return s.httpL.Addr(), s.tlsL.Addr() }

// Serve runs until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 4)
	go func() { errc <- s.HTTP.Serve(s.fallback) }()
	go func() { errc <- s.HTTPS.Serve(s.h2) }()
	go func() { errc <- s.acceptLoop(s.httpL, false) }()
	tl := s.tlsL
	if s.Passthrough {
		tl = newSNIListener(tl, s.H, s.log)
	}
	go func() { errc <- s.acceptLoop(tl, true) }()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watchClients(wctx)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.closing.Store(true)
	err = errors.Join(err, ignoreClosed(s.httpL.Close()), ignoreClosed(tl.Close()))
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownWait)
	defer cancel()
	// The fast path's requests may still hand connections to net/http:
	// its servers shut down after them.
	err = errors.Join(err, s.shutdownFast(sctx))
	err = errors.Join(err, s.HTTP.Shutdown(sctx), s.HTTPS.Shutdown(sctx))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
