package proxy

import (
	"net/http"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestCookieAffinity(t *testing.T) {
	addrs := pods(t, "pod", 4)
	ann := map[string]string{"nginx.ingress.kubernetes.io/affinity": "cookie",
		"nginx.ingress.kubernetes.io/session-cookie-name": "route", "nginx.ingress.kubernetes.io/session-cookie-max-age": "3600"}
	tb := build(t, input([]*networkingv1.Ingress{ingress("web", 0, ann, "a.example.com", "/app", "web")}, map[string][]string{"web": addrs}, nil))
	_, httpAddr, _ := newServer(t, tb)
	url := "http://" + httpAddr + "/app/x"

	// Without the cookie: spread over the pods, each answer sets a cookie.
	seen := map[string]bool{}
	var cookie string
	for range 20 {
		code, body, resp := do(t, http.DefaultClient, url, "a.example.com", nil)
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		seen[body] = true
		sc := resp.Header.Get("Set-Cookie")
		if !strings.HasPrefix(sc, "route=") || !strings.Contains(sc, "Path=/app") || !strings.Contains(sc, "Max-Age=3600") || !strings.Contains(sc, "HttpOnly") {
			t.Fatalf("Set-Cookie = %q, want route=...; Path=/app; Max-Age=3600; HttpOnly", sc)
		}
		if strings.Contains(sc, "127.0.0.1") {
			t.Fatalf("cookie leaks the endpoint address: %q", sc)
		}
		cookie = strings.Split(sc, ";")[0]
	}
	if len(seen) != 4 {
		t.Fatalf("without the cookie 20 requests reached %d of 4 pods: %v", len(seen), seen)
	}

	// With the cookie: the same pod every time and no new cookie.
	_, first, _ := do(t, http.DefaultClient, url, "a.example.com", map[string]string{"Cookie": cookie})
	for i := range 20 {
		_, body, resp := do(t, http.DefaultClient, url, "a.example.com", map[string]string{"Cookie": cookie})
		if body != first {
			t.Fatalf("request %d with cookie %s went to %s, earlier to %s", i, cookie, body, first)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Fatalf("a valid cookie was replaced: %q", sc)
		}
	}

	// A cookie naming no endpoint is replaced.
	_, _, resp := do(t, http.DefaultClient, url, "a.example.com", map[string]string{"Cookie": "route=stale"})
	if sc := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "route=") || strings.HasPrefix(sc, "route=stale") {
		t.Fatalf("stale cookie: Set-Cookie = %q, want a new route cookie", sc)
	}
}
