package proxy

import (
	"net/http"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

const pfx = "nginx.ingress.kubernetes.io/"

// canaryServer serves a main Ingress (pods main0, main1) and a canary
// Ingress (pod canary0) with the given canary annotations on c.example.com/.
func canaryServer(t *testing.T, ann map[string]string) string {
	t.Helper()
	ca := map[string]string{pfx + "canary": "true"}
	for k, v := range ann {
		ca[pfx+k] = v
	}
	// The canary is the older Ingress: it must still not take the path.
	ings := []*networkingv1.Ingress{ingress("main", 5, nil, "c.example.com", "/", "main"), ingress("canary", 0, ca, "c.example.com", "/", "canary")}
	tb := build(t, input(ings, map[string][]string{"main": pods(t, "main", 2), "canary": pods(t, "canary", 1)}, nil))
	_, httpAddr, _ := newServer(t, tb)
	return "http://" + httpAddr + "/x"
}

// canaryShare sends n requests and returns how many the canary served.
func canaryShare(t *testing.T, url string, n int, hdr map[string]string) int {
	t.Helper()
	got := 0
	for range n {
		code, body, _ := do(t, http.DefaultClient, url, "c.example.com", hdr)
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		if strings.HasPrefix(body, "canary") {
			got++
		} else if !strings.HasPrefix(body, "main") {
			t.Fatalf("unexpected answer %q", body)
		}
	}
	return got
}

func TestCanaryByHeader(t *testing.T) {
	url := canaryServer(t, map[string]string{"canary-by-header": "X-Canary"})
	for _, tc := range []struct {
		val  string
		want int
	}{{"always", 10}, {"never", 0}, {"", 0}, {"other", 0}} {
		hdr := map[string]string{}
		if tc.val != "" {
			hdr["X-Canary"] = tc.val
		}
		if got := canaryShare(t, url, 10, hdr); got != tc.want {
			t.Errorf("X-Canary: %q: canary served %d of 10, want %d", tc.val, got, tc.want)
		}
	}
}

func TestCanaryByHeaderValueThenCookieThenWeight(t *testing.T) {
	url := canaryServer(t, map[string]string{"canary-by-header": "X-Env", "canary-by-header-value": "beta",
		"canary-by-cookie": "try", "canary-weight": "100"})
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"header value matches", map[string]string{"X-Env": "beta"}, 10},
		// "never" is not special with canary-by-header-value: ignored,
		// then the cookie decides.
		{"header other value, cookie never", map[string]string{"X-Env": "never", "Cookie": "try=never"}, 0},
		{"header other value, cookie always", map[string]string{"X-Env": "prod", "Cookie": "try=always"}, 10},
		{"header matches over cookie never", map[string]string{"X-Env": "beta", "Cookie": "try=never"}, 10},
		{"no header, cookie other value: weight 100", map[string]string{"Cookie": "try=x"}, 10},
	} {
		if got := canaryShare(t, url, 10, tc.hdr); got != tc.want {
			t.Errorf("%s: canary served %d of 10, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCanaryWeight(t *testing.T) {
	for _, w := range []string{"0", "100"} {
		url := canaryServer(t, map[string]string{"canary-weight": w})
		want := 0
		if w == "100" {
			want = 200
		}
		if got := canaryShare(t, url, 200, nil); got != want {
			t.Errorf("canary-weight %s: canary served %d of 200, want exactly %d", w, got, want)
		}
	}
	// 30%: over 2000 requests the count is binomial (mean 600, sd ≈ 20.5);
	// ±100 is about 5 sd, so a correct split fails this with probability
	// below 1e-6, while a split 5 points off fails it half the time and
	// one 10 points off always.
	url := canaryServer(t, map[string]string{"canary-weight": "30"})
	if got := canaryShare(t, url, 2000, nil); got < 500 || got > 700 {
		t.Errorf("canary-weight 30: canary served %d of 2000, want 600±100", got)
	}
}
