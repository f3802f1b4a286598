package route

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiterBurstAndRecovery(t *testing.T) {
	l := NewLimiter(2, 10) // limit-rps 2, burst 5×2
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Second
	for i := range 11 { // burst+1 at once, as nginx's limit_req burst nodelay
		if !l.Allow(a, now) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if l.Allow(a, now) {
		t.Fatal("request 12 at once allowed, want refused")
	}
	if !l.Allow(b, now) {
		t.Fatal("another client must have its own budget")
	}
	if l.Allow(a, now+400*time.Millisecond) {
		t.Fatal("0.4 s later (0.8 token) allowed, want refused")
	}
	if !l.Allow(a, now+600*time.Millisecond) {
		t.Fatal("0.6 s later (1.2 tokens: refused requests cost nothing) refused, want allowed")
	}
	if l.Allow(a, now+600*time.Millisecond) {
		t.Fatal("a second request on 0.2 token allowed")
	}
	// Long idle: full again, but never above burst+1.
	for i := range 11 {
		if !l.Allow(a, now+time.Hour) {
			t.Fatalf("after an hour, request %d refused", i+1)
		}
	}
	if l.Allow(a, now+time.Hour) {
		t.Fatal("the bucket grew above burst+1 while idle")
	}
}

func TestLimitersKeptAcrossBuilds(t *testing.T) {
	ls := &Limiters{}
	mk := func(v string) *Limiter {
		in := input(ing("lim", 0, map[string]string{AnnotationPrefix + "limit-rps": v}, path{"a.com", "/", PathPrefix, "svc-a"}))
		in.Limiters = ls
		tb, probs := Build(in)
		if len(probs) > 0 {
			t.Fatalf("problems: %s", problems(probs))
		}
		r, _ := tb.Lookup("a.com", "/")
		if len(r.Opts.Limits) != 1 {
			t.Fatalf("limits = %v", r.Opts.Limits)
		}
		return r.Opts.Limits[0]
	}
	l1, l2, l3 := mk("3"), mk("3"), mk("4")
	if l1 != l2 {
		t.Error("a rebuild with the same limit-rps must keep the limiter (and the clients' budgets)")
	}
	if l3 == l1 || l3.Rate != 4 || l3.Burst != 20 {
		t.Errorf("a changed limit-rps must give a new limiter: rate %v burst %v", l3.Rate, l3.Burst)
	}
	tb, probs := Build(input(ing("lim", 0, map[string]string{AnnotationPrefix + "limit-rps": "-1", AnnotationPrefix + "limit-burst-multiplier": "x",
		AnnotationPrefix + "limit-whitelist": "10.0.0.0/8, nope"}, path{"a.com", "/", PathPrefix, "svc-a"})))
	wantProblems(t, probs, `limit-rps="-1" is not valid`, `limit-burst-multiplier="x" is not valid`, `limit-whitelist="10.0.0.0/8, nope" is not valid: "nope" is not a CIDR`)
	if r, _ := tb.Lookup("a.com", "/"); len(r.Opts.Limits) != 0 || len(r.Opts.LimitExempt) != 1 || r.Opts.LimitExempt[0].String() != "10.0.0.0/8" {
		t.Errorf("a bad limit-rps must set no limit; exempt %v, want the valid 10.0.0.0/8", r.Opts.LimitExempt)
	}
}

func TestCustomErrorsSendTimeoutAuthTLSParsing(t *testing.T) {
	a := ing("a", 0, map[string]string{AnnotationPrefix + "custom-http-errors": "404, 503", AnnotationPrefix + "default-backend": "svc-c",
		AnnotationPrefix + "proxy-send-timeout": "7"}, path{"a.com", "/", PathPrefix, "svc-a"})
	b := ing("b", 1, map[string]string{AnnotationPrefix + "custom-http-errors": "404,200", AnnotationPrefix + "default-backend": "nosuch",
		AnnotationPrefix + "proxy-send-timeout": "soon", AnnotationPrefix + "auth-tls-secret": "default/nosuch",
		AnnotationPrefix + "auth-tls-verify-client": "maybe", AnnotationPrefix + "auth-tls-verify-depth": "0"}, path{"b.com", "/", PathPrefix, "svc-b"})
	tb, probs := Build(input(a, b))
	wantProblems(t, probs, `custom-http-errors="404,200" is not valid: "200" is not an error status code`, `default-backend="nosuch" is not valid: Service default/nosuch does not exist`,
		`proxy-send-timeout="soon" is not valid`, `auth-tls-secret="default/nosuch" is not valid: Secret default/nosuch does not exist`,
		`auth-tls-verify-client="maybe" is not valid`, `auth-tls-verify-depth="0" is not valid`)
	r, _ := tb.Lookup("a.com", "/")
	o := r.Opts
	if o.CustomErrors == nil || !o.CustomErrors.Has(404) || !o.CustomErrors.Has(503) || o.CustomErrors.Has(500) ||
		o.ErrorBackend == nil || o.ErrorBackend.Endpoints[0] != "10.0.0.3:8080" || o.SendTimeout != 7*time.Second {
		t.Errorf("options %+v", o)
	}
	rb, _ := tb.Lookup("b.com", "/")
	if ca := rb.Opts.ClientAuth; ca == nil || ca.Mode != "on" || ca.Depth != 1 || !tb.WantsClientCert("b.com") || tb.WantsClientCert("a.com") {
		t.Errorf("client auth %+v", rb.Opts.ClientAuth)
	}
}
