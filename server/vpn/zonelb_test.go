package vpn

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
	"github.com/iks-dev/iks/internal/vpnconn"
)

func zonePlan(t *testing.T, zoneLB string) (*vpnconn.Conn, *vpnconn.Plan) {
	t.Helper()
	c := &vpnconn.Conn{Name: "c", Spec: vpnconn.Spec{Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, Preshared: vpnconn.Preshared{SecretName: "psk"}}}
	if err := json.Unmarshal([]byte(`{"zoneLoadBalancer":`+zoneLB+`}`), &c.Spec); err != nil {
		t.Fatal(err)
	}
	p, err := vpnconn.Validate(c.Name, c.Spec, cluster)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestZoneServices(t *testing.T) {
	c, p := zonePlan(t, `"z1=10.87.1.100\nz2=10.87.2.100"`)
	svcs := wantServices("c", p, metav1.OwnerReference{Name: "c"})
	if len(svcs) != 2 {
		t.Fatalf("%d Services, want one per zone", len(svcs))
	}
	for i, want := range []struct{ name, zone, ip string }{{"iks-vpn-c-z1", "z1", "10.87.1.100"}, {"iks-vpn-c-z2", "z2", "10.87.2.100"}} {
		s := svcs[i]
		if s.Name != want.name || s.Annotations[lbpool.AnnotationZone] != want.zone || s.Spec.LoadBalancerIP != want.ip ||
			s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || s.Spec.Selector[ConnLabel] != "c" {
			t.Errorf("Service %d: %s zone %q IP %s policy %s selector %v, want %+v", i, s.Name, s.Annotations[lbpool.AnnotationZone],
				s.Spec.LoadBalancerIP, s.Spec.ExternalTrafficPolicy, s.Spec.Selector, want)
		}
	}
	// The gateway may run only where it has an IP.
	d, err := gatewayDeployment(c, p, Config{Image: "img", Cluster: cluster}, "", metav1.OwnerReference{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	na := d.Spec.Template.Spec.Affinity.NodeAffinity
	if na == nil || na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatal("no node affinity to the zones of zoneLoadBalancer")
	}
	req := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
	if req.Key != topology.LabelZone || req.Operator != corev1.NodeSelectorOpIn || strings.Join(req.Values, ",") != "z1,z2" {
		t.Errorf("node affinity %+v", req)
	}
	if _, plain := zonePlan(t, `{}`); len(wantServices("c", plain, metav1.OwnerReference{})) != 0 || zonesAffinity(plain) != nil {
		t.Error("no load balancer option: no Service, no zone affinity")
	}
}

func TestZoneLBProblems(t *testing.T) {
	_, p := zonePlan(t, `"z1=10.87.1.100\nz2=10.87.1.101"`)
	subnets := []lbpool.Subnet{{Kind: lbpool.Private, Prefix: netip.MustParsePrefix("10.87.1.96/28"), Zone: "z1"}}
	err := zoneLBProblems(p, subnets, nil)
	if err == nil || !strings.Contains(err.Error(), "zoneLoadBalancer z2=10.87.1.101: 10.87.1.101 is in the portable subnet 10.87.1.96/28 of zone z1: give an IP of a portable subnet of zone z2") ||
		strings.Contains(err.Error(), "z1=") {
		t.Errorf("zone mismatch: %v", err)
	}
	_, ok := zonePlan(t, `"z1=10.87.1.100"`)
	if err := zoneLBProblems(ok, subnets, nil); err != nil {
		t.Errorf("IP of its zone's subnet: %v", err)
	}
	_, out := zonePlan(t, `"z1=10.99.0.1"`)
	if err := zoneLBProblems(out, subnets, nil); err == nil || !strings.Contains(err.Error(), "zoneLoadBalancer z1: loadBalancerIP 10.99.0.1 is outside the portable subnets") {
		t.Errorf("outside the pools: %v", err)
	}
}

func TestApplyServiceRemovesStale(t *testing.T) {
	stale := lbService("c", netip.MustParseAddr("10.87.1.99"), metav1.OwnerReference{Name: "c"})
	other := lbService("d", netip.MustParseAddr("10.87.1.98"), metav1.OwnerReference{Name: "d"})
	cs := fake.NewClientset(stale, other)
	ctl := &Controller{cs: cs}
	_, p := zonePlan(t, `"z1=10.87.1.100"`)
	if err := ctl.applyService(context.Background(), "c", p, metav1.OwnerReference{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		l, err := cs.CoreV1().Services(vpnconn.Namespace).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, s := range l.Items {
			n = append(n, s.Name)
		}
		slices.Sort(n)
		return strings.Join(n, ",")
	}
	if got := names(); got != "iks-vpn-c-z1,iks-vpn-d" {
		t.Errorf("Services %s, want the zone's and the other connection's", got)
	}
	if err := ctl.applyService(context.Background(), "c", nil, metav1.OwnerReference{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if got := names(); got != "iks-vpn-d" {
		t.Errorf("invalid connection: Services %s left", got)
	}
}
