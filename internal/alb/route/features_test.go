package route

import (
	"strings"
	"testing"
)

// problems returns the Reason: Message of each problem, one per line.
func problems(probs []Problem) string {
	var msgs []string
	for _, p := range probs {
		msgs = append(msgs, p.Name+" "+p.Reason+": "+p.Message)
	}
	return strings.Join(msgs, "\n")
}

func wantProblems(t *testing.T, probs []Problem, want ...string) {
	t.Helper()
	all := problems(probs)
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problems lack %q:\n%s", w, all)
		}
	}
	if len(probs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(probs), len(want), all)
	}
}

func TestAffinityAnnotations(t *testing.T) {
	good := ing("good", 0, map[string]string{AnnotationPrefix + "affinity": "cookie", AnnotationPrefix + "session-cookie-max-age": "60",
		AnnotationPrefix + "session-cookie-samesite": "None",
		AnnotationPrefix + "session-cookie-expires":  "120", AnnotationPrefix + "session-cookie-path": "/p"}, path{"a.com", "/", PathPrefix, "svc-a"})
	bad := ing("bad", 1, map[string]string{AnnotationPrefix + "affinity": "cookie", AnnotationPrefix + "session-cookie-name": "a b",
		AnnotationPrefix + "session-cookie-max-age": "soon", AnnotationPrefix + "session-cookie-samesite": "sometimes"}, path{"b.com", "/", PathPrefix, "svc-b"})
	wrong := ing("wrong", 2, map[string]string{AnnotationPrefix + "affinity": "ip"}, path{"c.com", "/", PathPrefix, "svc-c"})
	tb, probs := Build(input(good, bad, wrong))
	wantProblems(t, probs, `session-cookie-name="a b" is not valid`, `session-cookie-max-age="soon" is not valid`, `affinity="ip" is not valid`,
		`session-cookie-samesite="sometimes" is not valid`)
	r, _ := tb.Lookup("a.com", "/")
	if a := r.Opts.Affinity; a == nil || a.Name != DefaultCookieName || a.MaxAge != 60 || a.Expires != 120 || a.Path != "/p" {
		t.Errorf("affinity = %+v", r.Opts.Affinity)
	}
	if r, _ := tb.Lookup("b.com", "/"); r.Opts.Affinity == nil || r.Opts.Affinity.Name != DefaultCookieName || r.Opts.Affinity.MaxAge != 0 {
		t.Errorf("bad values must keep the defaults: %+v", r.Opts.Affinity)
	}
	if r, _ := tb.Lookup("c.com", "/"); r.Opts.Affinity != nil {
		t.Errorf("affinity ip must be off: %+v", r.Opts.Affinity)
	}
	be := r.Backend
	c := r.Opts.Affinity.Cookie(be, be.Endpoints[0], "/")
	if !strings.Contains(c, "Path=/p") || !strings.Contains(c, "Max-Age=60") || !strings.Contains(c, "Expires=") || strings.Contains(c, "10.0.0.1") ||
		!strings.Contains(c, "SameSite=None") || !strings.Contains(c, "Secure") {
		t.Errorf("cookie = %q", c)
	}
}

func TestCanaryAnnotations(t *testing.T) {
	main := ing("main", 0, nil, path{"a.com", "/", PathPrefix, "svc-a"})
	can := ing("can", 1, map[string]string{AnnotationPrefix + "canary": "true", AnnotationPrefix + "canary-weight": "30",
		AnnotationPrefix + "canary-by-header": "X-C", AnnotationPrefix + "canary-by-cookie": "c"}, path{"a.com", "/", PathPrefix, "svc-b"})
	second := ing("second", 2, map[string]string{AnnotationPrefix + "canary": "true"}, path{"a.com", "/", PathPrefix, "svc-c"})
	orphan := ing("orphan", 3, map[string]string{AnnotationPrefix + "canary": "true", AnnotationPrefix + "canary-weight": "150",
		AnnotationPrefix + "server-snippet": "return 200;"},
		path{"a.com", "/other", PathPrefix, "svc-c"})
	stray := ing("stray", 4, map[string]string{AnnotationPrefix + "canary-weight": "10"}, path{"s.com", "/", PathPrefix, "svc-a"})
	tb, probs := Build(input(main, can, second, orphan, stray))
	wantProblems(t, probs, "second DuplicateCanary", "stray BadAnnotation: annotation nginx.ingress.kubernetes.io/canary-weight has no effect: this Ingress is not a canary", `orphan BadAnnotation: annotation nginx.ingress.kubernetes.io/canary-weight="150" is not valid: use an integer from 0 to 100`,
		"orphan CanaryWithoutMain", "orphan BadAnnotation: annotation nginx.ingress.kubernetes.io/server-snippet is refused")
	r, _ := tb.Lookup("a.com", "/x")
	if r.Ingress != "default/main" || r.Canary == nil || r.Canary.Ingress != "default/can" || r.Canary.Weight != 30 ||
		r.Canary.Header != "X-C" || r.Canary.Cookie != "c" || r.Canary.Backend.Endpoints[0] != "10.0.0.2:8080" {
		t.Fatalf("route %+v canary %+v", r, r.Canary)
	}
	if r, _ := tb.Lookup("a.com", "/other"); r.Ingress != "default/main" || r.Canary == nil || r.Canary.Ingress != "default/can" {
		t.Errorf("an orphan canary must not serve its path: %+v", r)
	}
}
