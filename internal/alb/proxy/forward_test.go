package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

func TestForwardHeadersLimitsAndTimeout(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "x-hop")
		w.Header().Set("X-Hop", "must not pass")
		fmt.Fprintf(w, "xff=%s real=%s proto=%s host=%s fhost=%s body=%d conn=%q", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Real-Ip"),
			r.Header.Get("X-Forwarded-Proto"), r.Host, r.Header.Get("X-Forwarded-Host"), n, r.Header.Get("X-Client-Hop"))
	}))
	defer be.Close()
	tb := table(t, map[string]string{route.AnnotationPrefix + "proxy-body-size": "1k", route.AnnotationPrefix + "proxy-read-timeout": "1"}, false,
		map[string][]string{"f.example.com": {be.Listener.Addr().String()}})
	_, httpAddr, _ := newServer(t, tb)
	req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/", strings.NewReader(strings.Repeat("a", 1000)))
	req.Host = "f.example.com"
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "dropped")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `xff=192.0.2.1, 127.0.0.1 real=127.0.0.1 proto=http host=f.example.com fhost=f.example.com body=1000 conn=""`
	if string(body) != want || resp.Header.Get("X-Hop") != "" {
		t.Errorf("got %q (X-Hop %q), want %q and no hop-by-hop header back", body, resp.Header.Get("X-Hop"), want)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+httpAddr+"/", strings.NewReader(strings.Repeat("a", 2000)))
	req.Host = "f.example.com"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2000 bytes over proxy-body-size 1k: %v %v, want 413", resp, err)
	}
	// Without a length (chunked), the limit is met while streaming.
	req, _ = http.NewRequest(http.MethodPost, "http://"+httpAddr+"/", io.MultiReader(strings.NewReader(strings.Repeat("a", 2000))))
	req.Host, req.ContentLength = "f.example.com", -1
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 2000 bytes over proxy-body-size 1k: %v %v, want 413", resp, err)
	}
	if resp, _ := get(t, noRedirect, "http://"+httpAddr+"/slow", "f.example.com"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("backend slower than proxy-read-timeout: %d, want 504", resp.StatusCode)
	}
}

// TestStalePooledConnection: a backend that closes each connection after
// one answer (without saying so) leaves a dead pooled connection; the
// next request is sent again on a new one.
func TestStalePooledConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	_, httpAddr, _ := newServer(t, table(t, nil, false, map[string][]string{"s.example.com": {l.Addr().String()}}))
	for i := range 5 {
		resp, body := get(t, noRedirect, "http://"+httpAddr+"/", "s.example.com")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond) // let the backend's close arrive
	}
}

func TestIdleSweep(t *testing.T) {
	cl := newH1Client()
	a, b := net.Pipe()
	defer b.Close()
	old := &h1Conn{c: a}
	cl.put("gone:80", old)
	cl.mu.Lock()
	old.used = time.Now().Add(-2 * idleTimeout) // idle far too long
	cl.swept = time.Time{}
	cl.mu.Unlock()
	c2, d2 := net.Pipe()
	defer d2.Close()
	cl.put("live:80", &h1Conn{c: c2})
	cl.mu.Lock()
	_, kept := cl.idle["gone:80"]
	n := len(cl.idle["live:80"])
	cl.mu.Unlock()
	if kept || n != 1 {
		t.Errorf("after a sweep: gone kept %v, live %d; want gone dropped, live 1", kept, n)
	}
}
