package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/iks-dev/iks/internal/alb/route"
)

// table builds a route table with one Ingress and its backends behind a
// fake Service whose endpoints are the given addresses.
func table(t *testing.T, ann map[string]string, tlsHost bool, hosts map[string][]string) *route.Table {
	t.Helper()
	return buildTable(t, ann, tlsHost, hosts)
}

func newServer(t *testing.T, tb *route.Table, access ...io.Writer) (*Handler, string, string) {
	t.Helper()
	h := NewHandler(slog.New(slog.DiscardHandler), 443)
	if len(access) > 0 {
		h.Access = NewAccessLog(access[0])
		t.Cleanup(h.Access.Close)
	}
	h.Swap(tb)
	s, err := Listen(h, "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ha, ta := s.Addrs()
	return h, ha.String(), ta.String()
}

func get(t *testing.T, c *http.Client, url, host string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestProxySpreadsAndForwards(t *testing.T) {
	var addrs []string
	for i := range 3 {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "pod%d %s %s xff=%s", i, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For"))
		}))
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Listener.Addr().String())
	}
	// One endpoint is dead: the transport retries another.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	_, httpAddr, _ := newServer(t, table(t, nil, false, map[string][]string{"web.example.com": append(addrs, deadAddr)}))
	seen := map[string]bool{}
	for range 40 {
		resp, body := get(t, noRedirect, "http://"+httpAddr+"/hello", "web.example.com")
		if resp.StatusCode != 200 || !strings.Contains(body, "web.example.com /hello xff=127.0.0.1") {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		seen[body[:4]] = true
	}
	if len(seen) != 3 {
		t.Errorf("requests reached %v, want all 3 pods", seen)
	}
	if resp, _ := get(t, noRedirect, "http://"+httpAddr+"/", "nope.example.com"); resp.StatusCode != 404 {
		t.Errorf("unknown host: %d, want 404", resp.StatusCode)
	}
}

func TestTLSRedirectHSTSAndHTTP2(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure") }))
	defer be.Close()
	tb := table(t, nil, true, map[string][]string{"s.example.com": {be.Listener.Addr().String()}})
	_, httpAddr, tlsAddr := newServer(t, tb)
	resp, _ := get(t, noRedirect, "http://"+httpAddr+"/p?q=1", "s.example.com")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://s.example.com/p?q=1" {
		t.Errorf("HTTP on a TLS host: %d Location %q, want 301 to https://s.example.com/p?q=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "s.example.com"}}}
	resp, body := get(t, c, "https://"+tlsAddr+"/", "s.example.com")
	if body != "secure" || resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") != HSTSValue {
		t.Errorf("HTTPS: proto %s body %q HSTS %q", resp.Proto, body, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.TLS.PeerCertificates[0].Subject.CommonName != "s.example.com" {
		t.Errorf("SNI s.example.com got certificate %q", resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + tlsAddr + "/"); err == nil {
		t.Error("TLS 1.1 accepted, want TLS 1.2+ only")
	}
	def := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "unknown.example.com"}}}
	resp, _ = get(t, def, "https://"+tlsAddr+"/", "unknown.example.com")
	if resp.TLS.PeerCertificates[0].Subject.CommonName != "default" {
		t.Errorf("unknown SNI got certificate %q, want the default", resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
}

func TestWebSocketAndStreaming(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			c, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			fmt.Fprint(rw, "echo "+line)
			rw.Flush()
			return
		}
		for i := range 3 {
			fmt.Fprintf(w, "chunk%d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	}))
	defer be.Close()
	// With the access log on: its writer wrapper must pass Hijack and Flush.
	var logBuf syncBuffer
	_, httpAddr, _ := newServer(t, table(t, nil, false, map[string][]string{"ws.example.com": {be.Listener.Addr().String()}}), &logBuf)
	c, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Errorf("through the upgraded connection: %q %v", line, err)
	}
	// Streaming: the first chunk arrives before the backend has finished.
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/stream", nil)
	req.Host = "ws.example.com"
	t0 := time.Now()
	sr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Body.Close()
	first, _ := bufio.NewReader(sr.Body).ReadString('\n')
	if first != "chunk0\n" || time.Since(t0) > 35*time.Millisecond {
		t.Errorf("first chunk %q after %v: not streamed", first, time.Since(t0))
	}
	_, _ = io.Copy(io.Discard, sr.Body)
	sr.Body.Close()
	c.Close() // the WebSocket's line is written when it ends
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logBuf.String(), `"request_uri":"/stream","server_protocol":"HTTP/1.1","status":200,"bytes_sent":21`) ||
		!strings.Contains(logBuf.String(), `"request_uri":"/ws","server_protocol":"HTTP/1.1","status":101`) {
		if time.Now().After(deadline) {
			t.Fatalf("access log lacks the /stream or the /ws line:\n%s", logBuf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logBuf.String(), `"ingress":"ns/test","service":"ns/ws.example.com:80"`) {
		t.Errorf("access log:\n%s", logBuf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestGRPCBackendOverH2C(t *testing.T) {
	be := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		fmt.Fprintf(w, "proto=%s", r.Proto)
		w.Header().Set("Grpc-Status", "0")
	}), &http2.Server{}))
	defer be.Close()
	tb := table(t, map[string]string{route.AnnotationPrefix + "backend-protocol": "GRPC"}, true,
		map[string][]string{"g.example.com": {be.Listener.Addr().String()}})
	_, _, tlsAddr := newServer(t, tb)
	c := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "g.example.com"}}}
	req, _ := http.NewRequest(http.MethodPost, "https://"+tlsAddr+"/pkg.Svc/Method", strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Host = "g.example.com"
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "proto=HTTP/2.0" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("gRPC via h2c: body %q trailer %v", body, resp.Trailer)
	}
}
