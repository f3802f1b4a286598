package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// clientFrom is an HTTP client whose connections come from local address ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestLimitRPS(t *testing.T) {
	ann := map[string]string{pfx + "limit-rps": "1", pfx + "limit-whitelist": "127.0.0.3/32"}
	tb := build(t, input([]*networkingv1.Ingress{ingress("lim", 0, ann, "l.example.com", "/", "web")}, map[string][]string{"web": pods(t, "pod", 1)}, nil))
	_, httpAddr, _ := newServer(t, tb)
	url := "http://" + httpAddr + "/"
	c1 := clientFrom("127.0.0.1")
	// limit-rps 1: burst 5, so 6 requests at once pass (nginx's
	// burst+1), the 7th is refused; allow for one token refilled if the
	// machine is slow.
	codes := []int{}
	for range 8 {
		code, _, _ := do(t, c1, url, "l.example.com", nil)
		codes = append(codes, code)
	}
	ok := 0
	for _, c := range codes {
		if c == 200 {
			ok++
		} else if c != 503 {
			t.Fatalf("status %d, want 200 or 503: %v", c, codes)
		}
	}
	if ok < 6 || ok > 7 || codes[0] != 200 || codes[7] != 503 {
		t.Fatalf("statuses %v: want 6 (or 7 on a slow machine) 200s, then 503", codes)
	}
	// Another client address has its own budget.
	if code, _, _ := do(t, clientFrom("127.0.0.2"), url, "l.example.com", nil); code != 200 {
		t.Fatalf("another client got %d, want 200", code)
	}
	// limit-whitelist: never limited.
	for i := range 20 {
		if code, _, _ := do(t, clientFrom("127.0.0.3"), url, "l.example.com", nil); code != 200 {
			t.Fatalf("limit-whitelist client: request %d got %d, want 200", i+1, code)
		}
	}
	// One token a second: the first client recovers within about 1 s.
	start := time.Now()
	for {
		code, _, _ := do(t, c1, url, "l.example.com", nil)
		if code == 200 {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("the limited client did not recover within 3 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCustomHTTPErrorsAndDefaultBackend(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "app 404", http.StatusNotFound)
		case "/boom":
			http.Error(w, "app 500", http.StatusInternalServerError)
		default:
			fmt.Fprint(w, "app ok")
		}
	}))
	t.Cleanup(app.Close)
	errs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := 0
		fmt.Sscan(r.Header.Get("X-Code"), &code)
		if code == 0 {
			code = 404
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "errpage code=%s svc=%s ing=%s/%s uri=%s method=%s", r.Header.Get("X-Code"), r.Header.Get("X-Service-Name"),
			r.Header.Get("X-Namespace"), r.Header.Get("X-Ingress-Name"), r.Header.Get("X-Original-URI"), r.Method)
	}))
	t.Cleanup(errs.Close)
	ann := map[string]string{pfx + "custom-http-errors": "404,503", pfx + "default-backend": "errs"}
	ings := []*networkingv1.Ingress{ingress("app", 0, ann, "e.example.com", "/", "app"), ingress("down", 1, ann, "d.example.com", "/", "empty")}
	svcs := map[string][]string{"app": {app.Listener.Addr().String()}, "errs": {errs.Listener.Addr().String()}, "empty": nil}
	_, httpAddr, _ := newServer(t, build(t, input(ings, svcs, nil)))
	for _, tc := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"e.example.com", "/ok", 200, "app ok"},
		{"e.example.com", "/missing?q=1", 404, "errpage code=404 svc=app ing=ns/app uri=/missing?q=1 method=GET"},
		{"e.example.com", "/boom", 500, "app 500"}, // not listed
		// No endpoint: the default-backend Service answers instead of a 503.
		{"d.example.com", "/x", 404, "errpage code= svc= ing=/ uri= method=GET"},
	} {
		code, body, _ := do(t, http.DefaultClient, "http://"+httpAddr+tc.path, tc.host, nil)
		if code != tc.code || strings.TrimSpace(body) != tc.body {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, code, body, tc.code, tc.body)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	// A backend that accepts and never reads: the request body fills the
	// socket buffers and the next write waits past proxy-send-timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	cl := newH1Client()
	body := io.LimitReader(zeros{}, 1<<30)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+ln.Addr().String()+"/", io.NopCloser(body))
	req.ContentLength = 1 << 30
	start := time.Now()
	_, err = cl.roundTrip(req, time.Minute, 300*time.Millisecond)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the send timeout of 0.3 s took %v", d)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
