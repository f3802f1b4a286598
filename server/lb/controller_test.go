package lb

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lbpool"
)

func lbSvc(name, statusIP, wantIP string, created time.Time) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: wantIP}}
	if statusIP != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: statusIP}}
	}
	return s
}

// A restarted controller keeps the IPs found in Services' status, gives
// new Services free ones, and refuses a requested IP that is held.
func TestControllerRebuildsFromStatus(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	cs := fake.NewClientset(
		topoNode("w1", "z1", "10.95.2.5/24", "10.95.1.5/24"),
		lbSvc("old", "10.95.1.69", "", t0),
		lbSvc("new", "", "", t0.Add(time.Minute)),
		lbSvc("greedy", "", "10.95.1.69", t0.Add(2*time.Minute)),
	)
	c := New(Config{Clients: kubeclients.ForTest(cs, nil), Subnets: subnets(t)}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	status := func(name string) string {
		s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return ""
		}
		return s.Status.LoadBalancer.Ingress[0].IP
	}
	deadline := time.Now().Add(10 * time.Second)
	for status("new") == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := status("new"); got != "10.95.1.68" {
		t.Errorf("new service got %q, want the free 10.95.1.68", got)
	}
	if got := status("old"); got != "10.95.1.69" {
		t.Errorf("old service's IP changed to %q across the restart", got)
	}
	var events string
	for time.Now().Before(deadline) {
		evs, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		events = fmt.Sprint(len(evs.Items))
		found := false
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "greedy" && e.Reason == ReasonTaken {
				found = true
			}
		}
		if found {
			events = ""
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if events != "" {
		t.Errorf("no %s event for the service asking for a held IP (%s events)", ReasonTaken, events)
	}
	if got := status("greedy"); got != "" {
		t.Errorf("greedy service got %q, a held IP", got)
	}
	cm, err := cs.CoreV1().ConfigMaps(lbpool.ConfigMapNamespace).Get(ctx, lbpool.ConfigMapName, metav1.GetOptions{})
	if err != nil || cm.Data[lbpool.ConfigMapKey] == "" {
		t.Errorf("pools not published: %v", err)
	}
}
