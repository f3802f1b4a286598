package nodeaddr

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
	"github.com/iks-dev/iks/internal/topology"
)

func node(name, private, public string, tainted bool) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{topology.AnnotationPrivateCIDR: private}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.1.1"}}}}
	if public != "" {
		n.Annotations[topology.AnnotationPublicCIDR] = public
	}
	if tainted {
		n.Spec.Taints = []corev1.Taint{{Key: "other", Effect: corev1.TaintEffectNoSchedule},
			{Key: TaintUninitialized, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// A dual-homed node gets InternalIP = private, ExternalIP = public and
// loses the uninitialized taint (only that one); a private-only node and
// a node that has not published its sides are left alone.
func TestDualHomedNodesGetBothAddresses(t *testing.T) {
	cs := fake.NewClientset(node("dual", "10.9.1.2/24", "169.61.4.2/26", true), node("priv", "10.9.1.3/24", "", false),
		node("waiting", "", "", true))
	c := New(kubeclients.ForTest(cs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	want := "[{InternalIP 10.9.1.2} {ExternalIP 169.61.4.2} {Hostname dual}] [{other  NoSchedule <nil>}]"
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "dual", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got = fmt.Sprint(n.Status.Addresses, n.Spec.Taints); got == want {
			break
		}
	}
	if got != want {
		t.Fatalf("dual-homed node: %s, want %s", got, want)
	}
	for _, name := range []string{"priv", "waiting"} {
		n, _ := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if len(n.Status.Addresses) != 1 || n.Status.Addresses[0].Address != "10.1.1.1" {
			t.Errorf("%s: addresses changed to %v", name, n.Status.Addresses)
		}
	}
	if n, _ := cs.CoreV1().Nodes().Get(ctx, "waiting", metav1.GetOptions{}); len(n.Spec.Taints) != 2 {
		t.Errorf("a node that has not published its sides lost its taints: %v", n.Spec.Taints)
	}
}
