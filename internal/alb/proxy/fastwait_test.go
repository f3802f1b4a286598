package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// timedServer is fastServer with the idle and header timeouts given.
func timedServer(t *testing.T, idle, header time.Duration) string {
	t.Helper()
	h := NewHandler(slog.New(slog.DiscardHandler), 443)
	h.Swap(table(t, nil, false, map[string][]string{"app.example.com": {echoBackend(t)}}))
	s, err := Listen(h, "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.idleTimeout, s.headerTimeout = idle, header
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ha, _ := s.Addrs()
	return ha.String()
}

// A client that sends its request and then its FIN at once (printf |
// nc) gets the answer, then the connection closed at once, not after
// the idle timeout: the FIN came with the request's bytes, and the
// server must not wait for a readiness signal it already had.
func TestFastPathHalfClosedClient(t *testing.T) {
	addr := timedServer(t, time.Minute, time.Minute)
	for i := range 20 {
		rc := dialRaw(t, addr)
		_ = rc.c.SetDeadline(time.Now().Add(5 * time.Second))
		rc.send("GET /half HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
		_ = rc.c.(*net.TCPConn).CloseWrite()
		resp, body := rc.read(http.MethodGet)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /half len=0") {
			t.Fatalf("round %d: got %d %q", i, resp.StatusCode, body)
		}
		if !rc.closed() {
			t.Fatalf("round %d: the ALB kept a half-closed connection open after answering", i)
		}
	}
}

// A head that comes in parts is read across waits and served; the
// header timeout runs from its first byte, however often more bytes
// come (a slowloris client is cut).
func TestFastPathHeadInPartsAndHeaderTimeout(t *testing.T) {
	addr := timedServer(t, time.Minute, 400*time.Millisecond)
	rc := dialRaw(t, addr)
	for _, part := range []string{"GET /parts HT", "TP/1.1\r\nHost: app.exa", "mple.com\r\n", "\r\n"} {
		rc.send(part)
		// Nothing is answered before the head is whole.
		_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if part != "\r\n" {
			if _, err := rc.br.Peek(1); !isTimeout(err) {
				t.Fatalf("after %q: the ALB answered or closed (%v)", part, err)
			}
		}
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /parts len=0") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}

	slow := dialRaw(t, addr)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, err := io.Copy(io.Discard, slow.c) // returns when the ALB closes
		if err == nil || !isTimeout(err) {
			closed <- time.Since(start)
		}
		close(closed)
	}()
	// One byte every 100 ms (each well within the header timeout) for 3 s.
	head := "GET /slowloris HTTP/1.1\r\nHost: app.example.com\r\nX-Pad: " + strings.Repeat("a", 40)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(head) && time.Since(start) < 3*time.Second; i++ {
		if _, err := slow.c.Write([]byte{head[i]}); err != nil {
			break
		}
		select {
		case d, ok := <-closed:
			if !ok || d > 2*time.Second {
				t.Fatalf("the slow head was cut after %v; want about the 400ms header timeout", d)
			}
			return
		case <-tick.C:
		}
	}
	t.Fatal("a head trickling in one byte at a time was not cut by the header timeout")
}
