package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/alb/route"
)

// pods starts n backends answering "<name><i>" and returns their addresses.
func pods(t *testing.T, name string, n int) []string {
	t.Helper()
	var addrs []string
	for i := range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s%d", name, i)
		}))
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Listener.Addr().String())
	}
	return addrs
}

// ingress is an Ingress in namespace ns of the given age (seconds after
// a fixed time) with one Prefix rule host/path → Service svc port 80.
func ingress(name string, age int, ann map[string]string, host, path, svc string) *networkingv1.Ingress {
	pt := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: ann,
		CreationTimestamp: metav1.NewTime(time.Unix(int64(1000+age), 0))},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &pt,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc,
					Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
}

// input serves Services named by svcs (port 80) whose endpoints are the
// given addresses, and the Secrets given.
func input(ings []*networkingv1.Ingress, svcs map[string][]string, secrets map[string]*corev1.Secret) route.Input {
	return route.Input{Ingresses: ings, Global: route.DefaultGlobal(),
		Service: func(_, name string) *corev1.Service {
			if _, ok := svcs[name]; !ok {
				return nil
			}
			return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		},
		Slices: func(_, name string) []*discoveryv1.EndpointSlice {
			var out []*discoveryv1.EndpointSlice
			for _, a := range svcs[name] {
				host, port, _ := net.SplitHostPort(a)
				n, _ := strconv.Atoi(port)
				out = append(out, &discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host}}},
					Ports: []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To(int32(n))}}})
			}
			return out
		},
		Secret: func(ns, name string) *corev1.Secret { return secrets[ns+"/"+name] },
	}
}

// build builds the table of in and fails on any problem.
func build(t *testing.T, in route.Input) *route.Table {
	t.Helper()
	tb, probs := route.Build(in)
	if len(probs) > 0 {
		t.Fatalf("build: %+v", probs)
	}
	return tb
}

// do sends a GET with the given Host and headers and returns the status,
// body and response.
func do(t *testing.T, c *http.Client, url, host string, hdr map[string]string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	var b [4096]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode, string(b[:n]), resp
}
