package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// checkALBNodePort: without portable subnets the public ALB is served
// through a NodePort Service on the node's address; an Ingress to the
// "web" Deployment answers there (TestSingleNodeServer).
func checkALBNodePort(t *testing.T, n *testutil.Node, cs kubernetes.Interface) {
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-alb"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstrFromInt(8080)}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pt := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
		Host: "it.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "web-alb", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	if _, err := cs.NetworkingV1().Ingresses("default").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var port int32
	c := &http.Client{Transport: &http.Transport{DialContext: n.Net.DialContext, DisableKeepAlives: true}, Timeout: 3 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if last = func() error {
			if port == 0 {
				svcs, err := cs.CoreV1().Services("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=iks-alb"})
				if err != nil || len(svcs.Items) != 1 || svcs.Items[0].Spec.Type != corev1.ServiceTypeNodePort {
					return fmt.Errorf("want one NodePort ALB service, got %v (%v)", svcs, err)
				}
				for _, p := range svcs.Items[0].Spec.Ports {
					if p.Name == "http" {
						port = p.NodePort
					}
				}
			}
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:%d/", n.IP, port), nil)
			req.Host = "it.example.com"
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), "hostname=web-") {
				return fmt.Errorf("%s: %q", resp.Status, body)
			}
			return nil
		}(); last == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, _ := n.Command("alb", "list").CombinedOutput()
	t.Fatalf("Ingress through the NodePort ALB: %v\n%s", last, out)
}
