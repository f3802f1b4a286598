package lb

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
)

// topoNode is a Node as its agent publishes it (private side, optional
// public side, zone).
func topoNode(name, zone, private, public string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{topology.LabelZone: zone},
		Annotations: map[string]string{topology.AnnotationPrivateCIDR: private}}}
	n.Labels[topology.LabelPrivateVLAN] = topology.VLANName(netip.MustParsePrefix(private))
	if public != "" {
		n.Annotations[topology.AnnotationPublicCIDR] = public
		n.Labels[topology.LabelPublicVLAN] = topology.VLANName(netip.MustParsePrefix(public))
	}
	return n
}

func mustParse(t *testing.T, k lbpool.Kind, v string) lbpool.Subnet {
	t.Helper()
	s, err := lbpool.Parse(k, "", v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Subnets no node is attached to are not used; zones pick subnets; a
// service without the ip-type annotation falls back to private when no
// public subnet is reachable, and keeps what it has.
func TestAllocatorFollowsPlacement(t *testing.T) {
	pubA := mustParse(t, lbpool.Public, "10.7.4.64/29")   // public network of zone z1
	privA := mustParse(t, lbpool.Private, "10.7.1.64/29") // private network of zone z1
	privB := mustParse(t, lbpool.Private, "10.7.2.64/29") // private network of zone z2
	subnets := []lbpool.Subnet{pubA, privA, privB}
	a := NewAllocator(subnets)
	privOnlyA := topoNode("a1", "z1", "10.7.1.2/24", "")
	nodeB := topoNode("b1", "z2", "10.7.2.2/24", "")
	a.SetPlacement(lbpool.Place(subnets, []*corev1.Node{privOnlyA, nodeB}))

	_, err := a.Allocate("ns/pub", Request{Kind: lbpool.Public, KindSet: true})
	if ae, ok := err.(*AllocError); !ok || ae.Reason != ReasonUnreachable || !strings.Contains(ae.Msg, "10.7.4.64/29") || !strings.Contains(ae.Msg, "--public-ip") {
		t.Errorf("public IP with no public node: %v, want %s naming the subnet and --public-ip", err, ReasonUnreachable)
	}
	ip, err := a.Allocate("ns/default", Request{Kind: lbpool.Public})
	if err != nil || !privA.IsServiceIP(ip) {
		t.Errorf("unannotated service in a private-only cluster got %v, %v; want a private IP of %s", ip, err, privA)
	}
	ip, err = a.Allocate("ns/z2", Request{Kind: lbpool.Private, KindSet: true, Zone: "z2"})
	if err != nil || !privB.IsServiceIP(ip) {
		t.Errorf("zone z2 service got %v, %v; want an IP of %s", ip, err, privB)
	}
	_, err = a.Allocate("ns/z9", Request{Kind: lbpool.Private, KindSet: true, Zone: "z9"})
	if ae, ok := err.(*AllocError); !ok || ae.Reason != ReasonNoZone || !strings.Contains(ae.Msg, "z1, z2") {
		t.Errorf("unknown zone: %v, want %s listing z1, z2", err, ReasonNoZone)
	}
	if _, err = a.Allocate("ns/wrongzone", Request{Kind: lbpool.Private, KindSet: true, Zone: "z1", IP: netip.MustParseAddr("10.7.2.70")}); err == nil {
		t.Error("an IP of zone z2 was given to a service asking for zone z1")
	}

	// A dual-homed node arrives: public IPs are handed out, the
	// unannotated service keeps its private IP.
	a.SetPlacement(lbpool.Place(subnets, []*corev1.Node{privOnlyA, nodeB, topoNode("a2", "z1", "10.7.1.3/24", "10.7.4.3/24")}))
	if ip, err := a.Allocate("ns/pub", Request{Kind: lbpool.Public, KindSet: true}); err != nil || !pubA.IsServiceIP(ip) {
		t.Errorf("public IP once a public node exists: %v, %v", ip, err)
	}
	if ip, err := a.Allocate("ns/default", Request{Kind: lbpool.Public}); err != nil || !privA.IsServiceIP(ip) {
		t.Errorf("unannotated service changed its IP to %v, %v", ip, err)
	}
	if ip, err := a.Allocate("ns/new", Request{Kind: lbpool.Public}); err != nil || !pubA.IsServiceIP(ip) {
		t.Errorf("new unannotated service got %v, %v; want public now", ip, err)
	}
}

// A Service left Pending because no node is on its subnet gets an IP as
// soon as a node of that network joins.
func TestControllerWaitsForANodeOnTheSubnet(t *testing.T) {
	cs := fake.NewClientset(topoNode("priv", "z1", "10.95.2.5/24", ""),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Annotations: map[string]string{lbpool.AnnotationIPType: "public"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}})
	c := New(Config{Clients: kubeclients.ForTest(cs, nil), Subnets: subnets(t)}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	waitEvent(t, cs, "web", ReasonUnreachable)
	if _, err := cs.CoreV1().Nodes().Create(ctx, topoNode("pub", "z1", "10.95.2.6/24", "10.95.1.6/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err == nil && len(s.Status.LoadBalancer.Ingress) == 1 {
			if got := s.Status.LoadBalancer.Ingress[0].IP; got != "10.95.1.68" {
				t.Fatalf("got %s, want 10.95.1.68", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no IP after a node joined the public network")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The public node leaves: the IP stays, with a warning.
	if err := cs.CoreV1().Nodes().Delete(ctx, "pub", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, cs, "web", ReasonNoEligibleNode)
	s, _ := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if len(s.Status.LoadBalancer.Ingress) != 1 || s.Status.LoadBalancer.Ingress[0].IP != "10.95.1.68" {
		t.Errorf("IP changed when its nodes left: %+v", s.Status.LoadBalancer)
	}
}

func waitEvent(t *testing.T, cs *fake.Clientset, obj, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		evs, _ := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == obj && e.Reason == reason {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s", reason, obj)
}
