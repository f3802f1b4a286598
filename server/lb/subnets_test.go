package lb

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lbpool"
)

func portableSubnet(name, typ, cidr string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": lbpool.ResourceGroup + "/" + lbpool.ResourceVersion, "kind": lbpool.ResourceKind,
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"type": typ, "cidr": cidr},
	}}
	u.SetCreationTimestamp(metav1.NewTime(time.Now()))
	return u
}

// A PortableSubnet added to a running cluster is used at once; one that
// overlaps a subnet in use is refused with an event; deleting a subnet
// moves its Services to the remaining pools.
func TestPortableSubnetResources(t *testing.T) {
	ctx := context.Background()
	flagPriv := mustParse(t, lbpool.Private, "10.95.2.0/28")
	cs := fake.NewClientset(topoNode("w1", "z1", "10.95.2.5/24", "10.95.1.5/24"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}})
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{lbpool.GVR: lbpool.ResourceListKind}, portableSubnet("pub-1", "public", "10.95.1.64/29"))
	c := New(Config{Clients: kubeclients.ForTest(cs, dyn), Subnets: []lbpool.Subnet{flagPriv},
		ClusterCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	status := func() string {
		s, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return ""
		}
		return s.Status.LoadBalancer.Ingress[0].IP
	}
	waitFor := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for status() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := status(); got != want {
			t.Fatalf("%s: service has %q, want %q", what, got, want)
		}
	}
	waitFor("public subnet from a PortableSubnet", "10.95.1.68")
	cm, err := cs.CoreV1().ConfigMaps(lbpool.ConfigMapNamespace).Get(ctx, lbpool.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := lbpool.Decode(cm.Data[lbpool.ConfigMapKey]); len(pub) != 2 {
		t.Errorf("published pools %v, want the flag subnet and the resource", pub)
	}

	if _, err := dyn.Resource(lbpool.GVR).Create(ctx, portableSubnet("overlap", "private", "10.95.2.8/29"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, cs, "overlap", ReasonInvalidSubnet)

	if err := dyn.Resource(lbpool.GVR).Delete(ctx, "pub-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without a public subnet an unannotated service falls back to private.
	waitFor("after its subnet was deleted", "10.95.2.4")
}
