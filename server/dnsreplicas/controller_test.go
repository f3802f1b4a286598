package dnsreplicas

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/iks-dev/iks/internal/kubeclients"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWant(t *testing.T) {
	for _, c := range []struct {
		ready int
		want  int32
	}{{0, 1}, {1, 1}, {2, 2}, {5, 2}} {
		if got := Want(c.ready, 2); got != c.want {
			t.Errorf("Want(%d, 2) = %d, want %d", c.ready, got, c.want)
		}
	}
}

func node(name string, ready bool, taints ...corev1.Taint) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func replicas(t *testing.T, cs kubernetes.Interface) int32 {
	t.Helper()
	d, err := cs.AppsV1().Deployments("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil {
		return 0
	}
	return *d.Spec.Replicas
}

func waitReplicas(t *testing.T, cs kubernetes.Interface, want int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for replicas(t, cs) != want {
		if time.Now().After(deadline) {
			t.Fatalf("replicas %d, want %d", replicas(t, cs), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestControllerFollowsReadyNodes(t *testing.T) {
	one := int32(1)
	cs := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Spec: appsv1.DeploymentSpec{Replicas: &one}},
		node("a", true),
		node("b", false),
		node("c", true, corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}),
	)
	c := New(Config{Clients: kubeclients.ForTest(cs, nil), Namespace: "kube-system", Deployment: "coredns", Max: 2}, slog.New(slog.DiscardHandler))
	seen := make(chan int, 100)
	c.observed = func(ready int, _ int32) {
		select {
		case seen <- ready:
		default: // the test only waits for the latest counts
		}
	}
	// synced waits until the controller has finished a sync that counted
	// n usable nodes: whatever it wanted to write is written by then.
	synced := func(n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-seen:
				if got == n {
					return
				}
			case <-deadline:
				t.Fatalf("the controller never synced with %d usable nodes", n)
			}
		}
	}
	if err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(context.Background()) }()
	ctx := context.Background()

	// One schedulable Ready node (b is NotReady, c tainted): stays 1.
	synced(1)
	if got := replicas(t, cs); got != 1 {
		t.Fatalf("replicas %d with one usable node, want 1", got)
	}
	// b becomes Ready: 2.
	if _, err := cs.CoreV1().Nodes().Update(ctx, node("b", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, cs, 2)
	// A third usable node: still 2 (the maximum).
	if _, err := cs.CoreV1().Nodes().Update(ctx, node("c", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	synced(3)
	if got := replicas(t, cs); got != 2 {
		t.Fatalf("replicas %d with three nodes, want the maximum 2", got)
	}
	// Two nodes gone: back to 1.
	for _, name := range []string{"b", "c"} {
		if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitReplicas(t, cs, 1)
}
