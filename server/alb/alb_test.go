package alb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/lbpool"
)

func TestPlan(t *testing.T) {
	pub, _ := lbpool.Parse(lbpool.Public, "f", "10.0.0.64/29")
	priv, _ := lbpool.Parse(lbpool.Private, "f", "10.0.1.0/28")
	got := Plan("abcd1234", []lbpool.Subnet{pub, priv})
	if len(got) != 2 || got[0].Name != "public-crabcd1234-alb1" || got[0].IP != netip.MustParseAddr("10.0.0.67") || !got[0].DefaultEnabled ||
		got[1].Name != "private-crabcd1234-alb1" || got[1].Class != PrivateClass || got[1].IP != netip.MustParseAddr("10.0.1.3") || got[1].DefaultEnabled {
		t.Errorf("Plan = %+v", got)
	}
	// No public subnet: a NodePort public ALB.
	if got := Plan("x", []lbpool.Subnet{priv}); len(got) != 2 || got[0].IP.IsValid() || got[0].Kind != lbpool.Public {
		t.Errorf("Plan without public subnet = %+v", got)
	}
	if !IsEnabled(got[0], nil) || IsEnabled(got[1], nil) || !IsEnabled(got[1], map[string]string{got[1].Name: Enabled}) {
		t.Error("IsEnabled defaults or override wrong")
	}
	if ClusterID("1a2b3c4d-5e6f-0000-1111-222233334444") != "1a2b3c4d" {
		t.Error("ClusterID")
	}
}

func TestWantReplicas(t *testing.T) {
	now := time.Now()
	node := func(name string, unsched bool, status corev1.ConditionStatus, since time.Duration) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Unschedulable: unsched},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
				LastTransitionTime: metav1.NewTime(now.Add(-since))}}}}
	}
	ready := func(name string) *corev1.Node { return node(name, false, corev1.ConditionTrue, time.Hour) }
	for _, c := range []struct {
		name  string
		nodes []*corev1.Node
		want  int32
	}{
		{"no nodes", nil, 1},
		{"one ready", []*corev1.Node{ready("a")}, 1},
		{"cordoned one does not count", []*corev1.Node{ready("a"), node("b", true, corev1.ConditionTrue, time.Hour)}, 1},
		{"at most Replicas", []*corev1.Node{ready("a"), ready("b"), ready("c")}, 2},
		// A node that just missed its heartbeats keeps its replica: the
		// Deployment must not delete a serving pod for a short outage.
		{"NotReady for a minute still counts", []*corev1.Node{ready("a"), node("b", false, corev1.ConditionUnknown, time.Minute)}, 2},
		{"NotReady for 10 minutes does not", []*corev1.Node{ready("a"), node("b", false, corev1.ConditionFalse, 10*time.Minute)}, 1},
	} {
		if got := wantReplicas(c.nodes, false, nil, now); got != c.want {
			t.Errorf("%s: wantReplicas = %d, want %d", c.name, got, c.want)
		}
	}
	nodes := []*corev1.Node{ready("s"), ready("w1"), ready("w2")}
	if got := wantReplicas(nodes, true, []string{"w1"}, now); got != 1 {
		t.Errorf("one attached node: %d replicas, want 1", got)
	}
	if got := wantReplicas(nodes, true, []string{"w1", "w2"}, now); got != 2 {
		t.Errorf("two attached nodes: %d replicas, want 2", got)
	}
	if got := wantReplicas(nodes, true, nil, now); got != 1 {
		t.Errorf("an ALB with an IP and no attached node: %d replicas, want 1 (pending until a node attaches)", got)
	}
}

// The pods follow a node label, so the template does not change when the
// attached nodes do; the label is set and removed as attachment changes.
func TestNodeLabels(t *testing.T) {
	a := ALB{Name: "public-crx-alb1", IP: netip.MustParseAddr("10.0.0.4")}
	noIP := ALB{Name: "public-crx-alb1-nodeport"}
	d1 := deployment(a, "img", 2, deploySettings{})
	d2 := deployment(a, "img", 2, deploySettings{})
	if !reflect.DeepEqual(d1.Spec.Template, d2.Spec.Template) {
		t.Fatal("deployment template not deterministic")
	}
	req := d1.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || *req.NodeSelectorTerms[0].MatchExpressions[0].Key != NodeLabel(a) {
		t.Fatalf("ALB with an IP: required node affinity %+v, want label %s", req, NodeLabel(a))
	}
	if r := deployment(noIP, "img", 2, deploySettings{}).Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
		t.Errorf("NodePort ALB has a required node affinity: %+v", r)
	}
	n := func(name string, labels map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	key := NodeLabel(a)
	nodes := []*corev1.Node{n("w1", nil), n("w2", map[string]string{key: "true"}), n("w3", map[string]string{key: "true"}), n("s", nil)}
	got := labelPatches(nodes, []ALB{a, noIP}, map[string][]string{a.Name: {"w1", "w2"}})
	want := map[string]map[string]any{"w1": {key: "true"}, "w3": {key: nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labelPatches = %v, want %v", got, want)
	}
	cs := fake.NewClientset(nodes[0], nodes[1], nodes[2], nodes[3])
	if err := syncNodeLabels(context.Background(), cs, nodes, []ALB{a, noIP}, map[string][]string{a.Name: {"w1", "w2"}}); err != nil {
		t.Fatal(err)
	}
	for name, wantLabel := range map[string]bool{"w1": true, "w2": true, "w3": false, "s": false} {
		nd, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, has := nd.Labels[key]; has != wantLabel {
			t.Errorf("node %s: label %s present=%v, want %v", name, key, has, wantLabel)
		}
	}
	// --disable alb takes the labels away again.
	if err := removeNodeLabels(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w1", "w2", "w3", "s"} {
		nd, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if _, has := nd.Labels[key]; has {
			t.Errorf("node %s keeps %s after --disable alb", name, key)
		}
	}
}

func TestStreamPorts(t *testing.T) {
	ps := streamPorts(map[string]string{"9000": "a/b:1", "x": "a/b:1", "80": "a/b:1"}, map[string]string{"5353": "a/b:53"})
	if len(ps) != 2 || ps[0].Name != "tcp-9000" || ps[1].Protocol != corev1.ProtocolUDP || ps[1].Port != 5353 {
		t.Errorf("streamPorts = %+v", ps)
	}
}

// TestReconcile: enabled gives a LoadBalancer Service asking for the ALB
// IP and 2 replicas; disabled deletes the Service and scales to 0; the
// default certificate is signed by the CA.
func TestParseDeploy(t *testing.T) {
	data := map[string]string{"a": `{"enableSslPassthrough":"true","replicas":"3"}`, "b": `{"enableSslPassthrough":false}`,
		"c": `{"enableSslPassthrough":"yes please"}`, "d": `not json`}
	for _, tc := range []struct {
		name    string
		want    bool
		wantErr string
	}{{"a", true, ""}, {"b", false, ""}, {"none", false, ""}, {"c", false, `enableSslPassthrough "yes please"`}, {"d", false, "not a JSON object"}} {
		ds, err := parseDeploy(data, tc.name)
		if ds.SSLPassthrough != tc.want || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: %+v, %v; want %v, error %q", tc.name, ds, err, tc.want, tc.wantErr)
		}
	}
}

func TestReconcile(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := writeCA(t, dir)
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, UID: "deadbeef-0000"}})
	pub, _ := lbpool.Parse(lbpool.Public, "f", "10.0.0.64/29")
	c := New(Config{Subnets: []lbpool.Subnet{pub}, Image: "iks.local/alb:x", CACert: caCert, CAKey: caKey, Client: cs}, slogDiscard())
	ctx := context.Background()
	a := Plan("deadbeef", c.cfg.Subnets)[0]
	if err := c.ensureShared(ctx, cs, []ALB{a}); err != nil {
		t.Fatal(err)
	}
	if err := c.reconcile(ctx, cs, a, true, 2, nil, deploySettings{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	if err != nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations[lbpool.AnnotationIP] != "10.0.0.67" ||
		svc.Labels[lbpool.LabelALB] != a.Name || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Fatalf("service %+v %v", svc, err)
	}
	d, _ := cs.AppsV1().Deployments(Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	req := d.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || req.NodeSelectorTerms[0].MatchExpressions[0].Key != NodeLabel(a) {
		t.Errorf("node affinity %+v, want the label %s required", req, NodeLabel(a))
	}
	if *d.Spec.Replicas != 2 || len(d.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("deployment replicas %d, anti-affinity %v", *d.Spec.Replicas, d.Spec.Template.Spec.Affinity)
	}
	if slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--enable-ssl-passthrough") {
		t.Error("ssl-passthrough must be off unless ibm-ingress-deploy-config enables it")
	}
	if err := c.reconcile(ctx, cs, a, true, 2, nil, deploySettings{SSLPassthrough: true}); err != nil {
		t.Fatal(err)
	}
	d, _ = cs.AppsV1().Deployments(Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--enable-ssl-passthrough") {
		t.Errorf("enableSslPassthrough: args %v lack --enable-ssl-passthrough", d.Spec.Template.Spec.Containers[0].Args)
	}
	if err := c.reconcile(ctx, cs, a, false, 2, nil, deploySettings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(Namespace).Get(ctx, a.Name, metav1.GetOptions{}); err == nil {
		t.Error("disabled ALB still has its service")
	}
	d, _ = cs.AppsV1().Deployments(Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	if *d.Spec.Replicas != 0 {
		t.Errorf("disabled ALB has %d replicas", *d.Spec.Replicas)
	}
	sec, err := cs.CoreV1().Secrets(Namespace).Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(caCert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "iks-alb-default", CurrentTime: time.Now()}); err != nil {
		t.Errorf("default certificate not signed by the cluster CA: %v", err)
	}
	st, _ := cs.CoreV1().ConfigMaps(Namespace).Get(ctx, StateConfigMap, metav1.GetOptions{})
	if st.Data[a.Name] != Enabled || st.Data[a.Name+".ip"] != "10.0.0.67" {
		t.Errorf("state %v", st.Data)
	}
}
