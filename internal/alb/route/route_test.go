package route

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type path struct {
	host, path, typ, svc string
}

func ing(name string, age int, ann map[string]string, paths ...path) *networkingv1.Ingress {
	i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann,
		CreationTimestamp: metav1.NewTime(time.Unix(int64(1000+age), 0))}}
	for _, p := range paths {
		pt := networkingv1.PathType(p.typ)
		i.Spec.Rules = append(i.Spec.Rules, networkingv1.IngressRule{Host: p.host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: p.path, PathType: &pt,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: p.svc,
					Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}})
	}
	return i
}

// input serves Services svc-a, svc-b, svc-c (port 80 "http" → 8080) with
// one ready endpoint each (10.0.0.1, .2, .3) and one not ready.
func input(ings ...*networkingv1.Ingress) Input {
	ips := map[string]string{"svc-a": "10.0.0.1", "svc-b": "10.0.0.2", "svc-c": "10.0.0.3"}
	return Input{
		Ingresses: ings, Global: DefaultGlobal(),
		Service: func(ns, name string) *corev1.Service {
			if _, ok := ips[name]; !ok || ns != "default" {
				return nil
			}
			return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		},
		Slices: func(ns, name string) []*discoveryv1.EndpointSlice {
			return []*discoveryv1.EndpointSlice{{
				Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ips[name]}},
					{Addresses: []string{"10.9.9.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}},
			}}
		},
		Secret: func(string, string) *corev1.Secret { return nil },
	}
}

func lookup(t *testing.T, tb *Table, host, p string) string {
	t.Helper()
	r, _ := tb.Lookup(host, p)
	if r == nil {
		return "404"
	}
	if len(r.Backend.Endpoints) == 0 {
		return "503"
	}
	return r.Backend.Endpoints[0]
}

func TestPathTypes(t *testing.T) {
	tb, probs := Build(input(ing("x", 0, nil,
		path{"a.example.com", "/exact", PathExact, "svc-a"},
		path{"a.example.com", "/foo", PathPrefix, "svc-b"},
		path{"a.example.com", "/foo/bar", PathPrefix, "svc-c"},
		path{"a.example.com", "/imp", PathImplementationSpecific, "svc-c"},
		path{"*.wild.com", "/", PathPrefix, "svc-a"},
		path{"", "/any", PathPrefix, "svc-b"},
	)))
	if len(probs) != 0 {
		t.Fatalf("problems: %+v", probs)
	}
	for _, c := range []struct{ host, path, want string }{
		{"a.example.com", "/exact", "10.0.0.1:8080"},
		{"a.example.com", "/exact/", "404"},
		{"a.example.com", "/foo", "10.0.0.2:8080"},
		{"a.example.com", "/foo/", "10.0.0.2:8080"},
		{"a.example.com", "/foobar", "404"}, // Prefix matches whole elements
		{"a.example.com", "/foo/bar/baz", "10.0.0.3:8080"},
		{"A.Example.COM", "/foo", "10.0.0.2:8080"},
		{"a.example.com", "/imposter", "10.0.0.3:8080"}, // ImplementationSpecific: string prefix
		{"x.wild.com", "/y", "10.0.0.1:8080"},
		{"x.y.wild.com", "/y", "404"}, // a wildcard covers one label
		{"wild.com", "/y", "404"},
		{"other.com", "/any/thing", "10.0.0.2:8080"},
		{"a.example.com", "/any", "404"}, // a known host does not fall to host-less rules
	} {
		if got := lookup(t, tb, c.host, c.path); got != c.want {
			t.Errorf("%s%s → %s, want %s", c.host, c.path, got, c.want)
		}
	}
	if tb.Rules != 6 {
		t.Errorf("Rules = %d, want 6", tb.Rules)
	}
}

func TestDefaultBackendDuplicatesAndMissing(t *testing.T) {
	old := ing("old", 0, nil, path{"h.com", "/", PathPrefix, "svc-a"})
	old.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "svc-c", Port: networkingv1.ServiceBackendPort{Name: "http"}}}
	dup := ing("dup", 5, nil, path{"h.com", "/", PathPrefix, "svc-b"}, path{"h.com", "/m", PathPrefix, "missing"})
	tb, probs := Build(input(dup, old))
	if got := lookup(t, tb, "h.com", "/"); got != "10.0.0.1:8080" {
		t.Errorf("h.com/ → %s, want the older Ingress's svc-a", got)
	}
	if got := lookup(t, tb, "nohost.com", "/"); got != "10.0.0.3:8080" {
		t.Errorf("unknown host → %s, want the default backend svc-c", got)
	}
	if got := lookup(t, tb, "h.com", "/m"); got != "503" {
		t.Errorf("missing service → %s, want 503", got)
	}
	reasons := map[string]string{}
	for _, p := range probs {
		reasons[p.Reason] = p.Name + ": " + p.Message
	}
	if m := reasons["DuplicatePath"]; !strings.HasPrefix(m, "dup:") || !strings.Contains(m, "default/old") {
		t.Errorf("DuplicatePath problem = %q, want one on dup naming default/old", m)
	}
	if m := reasons["BadBackend"]; !strings.Contains(m, "service default/missing does not exist") {
		t.Errorf("BadBackend problem = %q", m)
	}
}

func TestAnnotations(t *testing.T) {
	a := ing("rw", 0, map[string]string{
		AnnotationPrefix + "rewrite-target":         "/$2",
		AnnotationPrefix + "use-regex":              "true",
		AnnotationPrefix + "proxy-body-size":        "8m",
		AnnotationPrefix + "proxy-read-timeout":     "120",
		AnnotationPrefix + "whitelist-source-range": "10.0.0.0/8, 192.168.1.5",
		AnnotationPrefix + "backend-protocol":       "GRPC",
	}, path{"r.com", "/api(/|$)(.*)", PathImplementationSpecific, "svc-a"})
	bad := ing("bad", 1, map[string]string{
		AnnotationPrefix + "configuration-snippet": "more_set_headers x",
		AnnotationPrefix + "proxy-body-size":       "lots",
		AnnotationPrefix + "no-such-thing":         "1",
		AnnotationPrefix + "use-regex":             "true",
	}, path{"b.com", "/(unclosed", PathImplementationSpecific, "svc-b"}, path{"b.com", "/ok", PathPrefix, "svc-b"})
	tb, probs := Build(input(a, bad))
	r, _ := tb.Lookup("r.com", "/API/v1/x")
	if r == nil {
		t.Fatal("regex path did not match case-insensitively")
	}
	if got := r.RewritePath("/API/v1/x"); got != "/v1/x" {
		t.Errorf("rewrite = %q, want /v1/x", got)
	}
	if r.Opts.BodyLimit != 8<<20 || r.Opts.ReadTimeout != 120*time.Second || len(r.Opts.Allow) != 2 || r.Backend.Protocol != ProtoGRPC {
		t.Errorf("options = %+v, protocol %s", r.Opts, r.Backend.Protocol)
	}
	if r, _ := tb.Lookup("b.com", "/ok"); r == nil || r.Opts.BodyLimit != 1<<20 {
		t.Errorf("a bad Ingress's good path must still be served with default options, got %+v", r)
	}
	var msgs []string
	for _, p := range probs {
		if p.Name != "bad" {
			t.Errorf("problem on %s: %s", p.Name, p.Message)
		}
		msgs = append(msgs, p.Reason+": "+p.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"configuration-snippet is refused", "proxy-body-size=\"lots\" is not valid", "no-such-thing is unknown", "BadRegex"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

func TestRewriteWithoutRegex(t *testing.T) {
	tb, _ := Build(input(ing("r", 0, map[string]string{AnnotationPrefix + "rewrite-target": "/"}, path{"h", "/app", PathPrefix, "svc-a"})))
	r, _ := tb.Lookup("h", "/app/x")
	// As nginx's rewrite: the whole URI becomes the target.
	if r == nil || r.RewritePath("/app/x") != "/" {
		t.Fatalf("rewrite of /app/x = %q, want /", r.RewritePath("/app/x"))
	}
}

func TestStreams(t *testing.T) {
	in := input()
	in.TCP = map[string]string{"9000": "default/svc-a:80", "x": "default/svc-a:80", "8080": "default/svc-a:80", "9001": "nope"}
	in.UDP = map[string]string{"5353": "default/svc-b:http"}
	in.ReservedPorts = []int{8080}
	tb, probs := Build(in)
	if len(tb.Streams) != 2 || tb.Streams[0].Backend.Endpoints[0] != "10.0.0.1:8080" || tb.Streams[1].Proto != "udp" {
		t.Errorf("streams = %+v", tb.Streams)
	}
	if len(probs) != 3 {
		t.Errorf("want 3 problems (bad key, reserved port, bad value), got %+v", probs)
	}
}

func TestPickRoundRobin(t *testing.T) {
	b := &Backend{Endpoints: []string{"a", "b", "c"}}
	seen := map[string]int{}
	for range 30 {
		seen[b.Pick()]++
	}
	if seen["a"] != 10 || seen["b"] != 10 || seen["c"] != 10 {
		t.Errorf("round robin = %v", seen)
	}
}

func TestPickSkipsDownEndpoints(t *testing.T) {
	b := &Backend{Endpoints: []string{"a", "b", "c", "d"}}
	b.MarkDown("b")
	b.MarkDown("c")
	for range 20 {
		if ep := b.Pick(); ep == "b" || ep == "c" {
			t.Fatalf("picked %s, marked down", ep)
		}
	}
	for _, ep := range b.Endpoints {
		b.MarkDown(ep)
	}
	if ep := b.Pick(); ep == "" {
		t.Error("all down: Pick must still return one")
	}
}
