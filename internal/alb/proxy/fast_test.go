package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient is one client connection to the ALB, written byte by byte.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response to a request of method and its whole body.
func (rc *rawClient) read(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the ALB closed the connection (EOF next).
func (rc *rawClient) closed() bool {
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

// echoBackend answers "METHOD PATH len=N te=... xff=... proto=... host=..."
// and a few special paths.
func echoBackend(t *testing.T) string {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/304":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/close":
			w.Header().Set("Connection", "close")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", "3")
			return
		case "/head":
			w.Header().Set("Content-Length", "612")
			if r.Method == http.MethodHead {
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Hop", "kept")
		fmt.Fprintf(w, "%s %s len=%d te=%v xff=%s real=%s proto=%s host=%s fhost=%s q=%s ua=%q",
			r.Method, r.URL.Path, n, r.TransferEncoding, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Real-Ip"),
			r.Header.Get("X-Forwarded-Proto"), r.Host, r.Header.Get("X-Forwarded-Host"), r.URL.RawQuery, r.UserAgent())
	}))
	t.Cleanup(be.Close)
	return be.Listener.Addr().String()
}

func fastServer(t *testing.T, ann map[string]string) (*Handler, string, string) {
	t.Helper()
	return newServer(t, table(t, ann, false, map[string][]string{"app.example.com": {echoBackend(t)}}))
}

func TestFastPathPipelinedKeepAlive(t *testing.T) {
	h, addr, _ := fastServer(t, nil)
	rc := dialRaw(t, addr)
	// Three requests in one write; the answers come in order.
	rc.send("GET /a?x=1 HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 10.0.0.1\r\nUser-Agent: t/1\r\n\r\n" +
		"GET /b HTTP/1.1\r\nhost: app.example.com:8080\r\nx-forwarded-proto: https\r\n\r\n" +
		"DELETE /c HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	for _, want := range []string{
		`GET /a len=0 te=[] xff=10.0.0.1, 127.0.0.1 real=127.0.0.1 proto=http host=app.example.com fhost=app.example.com q=x=1 ua="t/1"`,
		`GET /b len=0 te=[] xff=127.0.0.1 real=127.0.0.1 proto=https host=app.example.com:8080 fhost=app.example.com:8080 q= ua=""`,
		`DELETE /c len=0`,
	} {
		resp, body := rc.read(http.MethodGet)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, want) {
			t.Errorf("got %d %q, want %q", resp.StatusCode, body, want)
		}
		if resp.Header.Get("X-Hop") != "kept" || resp.Header.Get("Date") == "" || resp.Close {
			t.Errorf("response header %v (close %v)", resp.Header, resp.Close)
		}
	}
	if n := h.fastRequests.Load(); n != 3 {
		t.Errorf("fast path served %d requests, want 3", n)
	}
}

func TestFastPathBodies(t *testing.T) {
	h, addr, _ := fastServer(t, nil)
	rc := dialRaw(t, addr)
	// A Content-Length body larger than the read buffer, then a chunked one.
	big := strings.Repeat("b", 300<<10)
	rc.send("POST /cl HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big)
	if resp, body := rc.read(http.MethodPost); resp.StatusCode != 200 || !strings.HasPrefix(body, "POST /cl len=307200 te=[]") {
		t.Errorf("content-length body: %d %q", resp.StatusCode, body)
	}
	rc.send("PUT /ch HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
	if resp, body := rc.read(http.MethodPut); resp.StatusCode != 200 || !strings.HasPrefix(body, "PUT /ch len=11 te=[chunked]") {
		t.Errorf("chunked body: %d %q", resp.StatusCode, body)
	}
	// A chunked answer keeps its chunks and trailer.
	rc.send("GET /chunked HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	resp, body := rc.read(http.MethodGet)
	if body != "part0;part1;part2;" || resp.TransferEncoding == nil || resp.Trailer.Get("X-Sum") != "3" {
		t.Errorf("chunked answer: %q te=%v trailer=%v", body, resp.TransferEncoding, resp.Trailer)
	}
	if n := h.fastRequests.Load(); n != 3 {
		t.Errorf("fast path served %d requests, want 3", n)
	}
}

func TestFastPathNoBodyAnswers(t *testing.T) {
	_, addr, _ := fastServer(t, nil)
	rc := dialRaw(t, addr)
	rc.send("HEAD /head HTTP/1.1\r\nHost: app.example.com\r\n\r\nGET /204 HTTP/1.1\r\nHost: app.example.com\r\n\r\n" +
		"GET /304 HTTP/1.1\r\nHost: app.example.com\r\n\r\nGET /after HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodHead); resp.StatusCode != 200 || resp.ContentLength != 612 || body != "" {
		t.Errorf("HEAD: %d length %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	for _, code := range []int{204, 304} {
		if resp, body := rc.read(http.MethodGet); resp.StatusCode != code || body != "" {
			t.Errorf("want %d, got %d %q", code, resp.StatusCode, body)
		}
	}
	// Had a body been expected after any of them, this would not parse.
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /after") {
		t.Errorf("after the bodiless answers: %d %q", resp.StatusCode, body)
	}
}

func TestFastPathConnectionClose(t *testing.T) {
	_, addr, _ := fastServer(t, nil)
	// The backend closes: the client's connection stays.
	rc := dialRaw(t, addr)
	rc.send("GET /close HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 200 || resp.Close {
		t.Errorf("backend's close reached the client: %d close=%v", resp.StatusCode, resp.Close)
	}
	rc.send("GET /again HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /again") {
		t.Errorf("second request: %d %q", resp.StatusCode, body)
	}
	// The client closes: the answer says so and the connection ends.
	rc.send("GET /last HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); !resp.Close {
		t.Error("no Connection: close in the answer to a closing client")
	}
	if !rc.closed() {
		t.Error("the connection stayed open after Connection: close")
	}
}

func TestFastPathHandsOverToNetHTTP(t *testing.T) {
	h, addr, _ := fastServer(t, nil)
	cases := []struct {
		name, req string
		code      int
		close     bool
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400, true},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, true},
		{"oversized head", "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 431, true},
		{"two content-lengths", "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, true},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nowhere.example.com\r\n\r\n", 404, false},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: app.example.com\r\n\r\n", 200, true},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: app.example.com\r\n\r\n", 200, false},
	}
	for _, tc := range cases {
		rc := dialRaw(t, addr)
		rc.send(tc.req)
		resp, body := rc.read(http.MethodGet)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, body, tc.code)
		}
		if tc.close && !rc.closed() {
			t.Errorf("%s: connection left open", tc.name)
		}
	}
	if n := h.fastRequests.Load(); n != 0 {
		t.Errorf("fast path served %d of these, want none", n)
	}
	// Expect: 100-continue after a fast request on the same connection:
	// net/http takes over with the bytes already read.
	rc := dialRaw(t, addr)
	rc.send("GET /first HTTP/1.1\r\nHost: app.example.com\r\n\r\nPOST /exp HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /first") {
		t.Errorf("first: %d %q", resp.StatusCode, body)
	}
	if resp, _ := rc.read(http.MethodPost); resp.StatusCode != 100 {
		t.Errorf("want 100 Continue, got %d", resp.StatusCode)
	}
	rc.send("data")
	if resp, body := rc.read(http.MethodPost); resp.StatusCode != 200 || !strings.HasPrefix(body, "POST /exp len=4") {
		t.Errorf("after 100 Continue: %d %q", resp.StatusCode, body)
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d, want 1", n)
	}
}

func TestFastPathLeavesFeaturesToNetHTTP(t *testing.T) {
	h, addr, _ := fastServer(t, map[string]string{"nginx.ingress.kubernetes.io/enable-cors": "true"})
	rc := dialRaw(t, addr)
	rc.send("GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("CORS route: %d %v", resp.StatusCode, resp.Header)
	}
	if n := h.fastRequests.Load(); n != 0 {
		t.Errorf("fast path served the CORS route %d times", n)
	}
}

func TestFastPathBodyLimitAndUpstreamErrors(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	h, addr, _ := newServer(t, table(t, map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "10"}, false,
		map[string][]string{"dead.example.com": {deadAddr}, "app.example.com": {echoBackend(t)}}))
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: dead.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 502 || resp.Close {
		t.Errorf("dead backend: %d close=%v, want 502 on a kept connection", resp.StatusCode, resp.Close)
	}
	// A chunked body over proxy-body-size: 413 and the connection closes.
	rc.send("POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n0123456789ab\r\n0\r\n\r\n")
	if resp, body := rc.read(http.MethodPost); resp.StatusCode != 413 || !strings.Contains(body, "proxy-body-size") {
		t.Errorf("chunked body over the limit: %d %q", resp.StatusCode, body)
	}
	if !rc.closed() {
		t.Error("connection left open after a body over the limit")
	}
	if n := h.fastRequests.Load(); n != 2 {
		t.Errorf("fast path served %d, want 2", n)
	}
}

func TestFastPathTLSAndH2(t *testing.T) {
	h, _, tlsAddr := fastServer(t, nil)
	c, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "app.example.com", NextProtos: []string{"http/1.1"}}) //nolint:gosec // test
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	rc.send("GET /tls HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.Contains(body, "proto=https") {
		t.Errorf("HTTPS/1.1: %d %q", resp.StatusCode, body)
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d, want 1", n)
	}
	// h2 by ALPN goes to net/http's HTTP/2 server.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+tlsAddr+"/h2", nil)
	req.Host = "app.example.com"
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Errorf("h2: %s %d", resp.Proto, resp.StatusCode)
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d after the h2 request, want 1", n)
	}
}

func TestFastPathHSTSOnTLSHosts(t *testing.T) {
	h, _, tlsAddr := newServer(t, table(t, nil, true, map[string][]string{"app.example.com": {echoBackend(t)}}))
	c, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "app.example.com", NextProtos: []string{"http/1.1"}}) //nolint:gosec // test
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	rc.send("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != HSTSValue {
		t.Errorf("HTTPS/1.1 on a TLS host: %d HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d, want 1", n)
	}
}

func TestFastPathShutdownClosesIdleConnections(t *testing.T) {
	h := NewHandler(slog.New(slog.DiscardHandler), 443)
	h.Swap(table(t, nil, false, map[string][]string{"app.example.com": {echoBackend(t)}}))
	s, err := Listen(h, "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	ha, _ := s.Addrs()
	rc := dialRaw(t, ha.String())
	rc.send("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 200 {
		t.Fatalf("before shutdown: %d", resp.StatusCode)
	}
	cancel()
	if !rc.closed() {
		t.Error("idle keep-alive connection not closed by the shutdown")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the shutdown")
	}
}

func TestFastPathRewriteAndWhitelist(t *testing.T) {
	const pfx = "nginx.ingress.kubernetes.io/"
	h, addr, _ := fastServer(t, map[string]string{pfx + "rewrite-target": "/new", pfx + "whitelist-source-range": "127.0.0.0/8"})
	rc := dialRaw(t, addr)
	rc.send("GET /old/x?q=1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /new len=0") || !strings.Contains(body, " q=q=1 ") {
		t.Errorf("rewrite-target: %d %q", resp.StatusCode, body)
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d, want 1", n)
	}
	// A client outside whitelist-source-range: net/http's handler answers 403.
	h2, addr2, _ := fastServer(t, map[string]string{pfx + "whitelist-source-range": "10.0.0.0/8"})
	rc = dialRaw(t, addr2)
	rc.send("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 403 {
		t.Errorf("refused client: %d, want 403", resp.StatusCode)
	}
	if n := h2.fastRequests.Load(); n != 0 {
		t.Errorf("fast path served %d refused requests", n)
	}
}

func TestFastPathClientGoneAbortsUpstream(t *testing.T) {
	got, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		select {
		case <-r.Context().Done(): // the ALB closed the upstream connection
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(be.Close)
	h, addr, _ := newServer(t, table(t, nil, false, map[string][]string{"app.example.com": {be.Listener.Addr().String()}}))
	rc := dialRaw(t, addr)
	rc.send("GET /slow HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	<-got
	rc.c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not aborted 5 s after its client left")
	}
	if n := h.fastRequests.Load(); n != 1 {
		t.Errorf("fast path served %d, want 1", n)
	}
}

// rawBackend answers each request with the canned bytes for its path,
// then closes the connection if the answer has no length.
func rawBackend(t *testing.T, answers map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					a := answers[req.URL.Path]
					if _, err := io.WriteString(c, a); err != nil || !strings.Contains(a, "Content-Length") {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestFastPathUpstreamFraming(t *testing.T) {
	be := rawBackend(t, map[string]string{
		"/noreason": "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
		"/eof":      "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end",
		"/interim":  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
		"/bad":      "HTTP/1.1 2x0 Nope\r\n\r\n",
	})
	h, addr, _ := newServer(t, table(t, nil, false, map[string][]string{"app.example.com": {be}}))
	rc := dialRaw(t, addr)
	rc.send("GET /noreason HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.Status != "200 OK" || body != "ok" {
		t.Errorf("no reason phrase: %q %q", resp.Status, body)
	}
	// A body that ends with the backend's close reaches the client
	// chunked, on a connection that stays open.
	rc.send("GET /eof HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); body != "until the end" || len(resp.TransferEncoding) != 1 || resp.Close || resp.Header.Get("X-A") != "1" {
		t.Errorf("close-delimited: %q te=%v close=%v", body, resp.TransferEncoding, resp.Close)
	}
	rc.send("GET /interim HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 201 || body != "new" {
		t.Errorf("after interim answers: %d %q", resp.StatusCode, body)
	}
	rc.send("GET /bad HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
	if resp, _ := rc.read(http.MethodGet); resp.StatusCode != 502 {
		t.Errorf("malformed answer: %d, want 502", resp.StatusCode)
	}
	if n := h.fastRequests.Load(); n != 4 {
		t.Errorf("fast path served %d, want 4", n)
	}
}
