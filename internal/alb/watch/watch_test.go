package watch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/alb/route"
)

type sink struct {
	mu    sync.Mutex
	t     *route.Table
	first *route.Table
}

func (s *sink) Swap(t *route.Table) {
	s.mu.Lock()
	s.t = t
	if s.first == nil {
		s.first = t
	}
	s.mu.Unlock()
}
func (s *sink) get() *route.Table { s.mu.Lock(); defer s.mu.Unlock(); return s.t }

func ingress(name, class, host, svc string) *networkingv1.Ingress {
	pt := networkingv1.PathTypePrefix
	i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: networkingv1.IngressSpec{
		Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	if class != "" {
		i.Spec.IngressClassName = &class
	}
	return i
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestWatcher: the class filter (explicit, default class, other class),
// endpoints from EndpointSlices, a change applied by a new table, the
// ALB IP written into status, a Warning Event for a missing Service.
func TestWatcher(t *testing.T) {
	cs := fake.NewClientset(
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "public-iks-k8s-nginx", Annotations: map[string]string{annotationDefaultClass: "true"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "alb", Namespace: "kube-system"},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "10.0.0.67"}}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.30.0.5"}}}},
		ingress("mine", "public-iks-k8s-nginx", "a.example.com", "web"),
		ingress("defaulted", "", "b.example.com", "web"),
		ingress("other", "private-iks-k8s-nginx", "c.example.com", "web"),
		ingress("broken", "public-iks-k8s-nginx", "d.example.com", "missing"),
	)
	s := &sink{}
	w := New(Config{Class: "public-iks-k8s-nginx", PublishService: "kube-system/alb"}, cs, s, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Synced()
	ep := func(host string) string {
		r, _ := s.get().Lookup(host, "/")
		if r == nil || len(r.Backend.Endpoints) == 0 {
			return ""
		}
		return r.Backend.Endpoints[0]
	}
	if ep("a.example.com") != "172.30.0.5:8080" || ep("b.example.com") != "172.30.0.5:8080" || ep("c.example.com") != "" {
		t.Errorf("a=%q b=%q c=%q, want a and b served (explicit and default class), c not (private class)", ep("a.example.com"), ep("b.example.com"), ep("c.example.com"))
	}
	eventually(t, "status of mine", func() error {
		i, _ := cs.NetworkingV1().Ingresses("default").Get(ctx, "mine", metav1.GetOptions{})
		if len(i.Status.LoadBalancer.Ingress) != 1 || i.Status.LoadBalancer.Ingress[0].IP != "10.0.0.67" {
			return errorf("status %+v", i.Status.LoadBalancer)
		}
		return nil
	})
	eventually(t, "Warning event on broken", func() error {
		evs, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "broken" && e.Reason == "BadBackend" && strings.Contains(e.Message, "default/missing does not exist") {
				return nil
			}
		}
		return errorf("%d events, none BadBackend on broken", len(evs.Items))
	})
	// An endpoint change is a new table.
	_, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.30.0.9"}}}}, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "new endpoint", func() error {
		if got := ep("a.example.com"); got != "172.30.0.9:8080" {
			return errorf("endpoint %q", got)
		}
		return nil
	})
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
