package vpn

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/vpnconn"
)

var cluster = vpnconn.Cluster{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16")}

func TestGatewayDeployment(t *testing.T) {
	c := &vpnconn.Conn{Name: "onprem", Generation: 3, Spec: vpnconn.Spec{
		Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, Preshared: vpnconn.Preshared{SecretName: "psk", Key: "key"},
		NodeSelector: map[string]string{"vpn": "yes"},
		Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
	}}
	p, err := vpnconn.Validate(c.Name, c.Spec, cluster)
	if err != nil {
		t.Fatal(err)
	}
	d, err := gatewayDeployment(c, p, Config{Image: "iks.local/strongswan:1", Cluster: cluster, APIServer: "https://10.0.0.1:6443"}, "k1", metav1.OwnerReference{Name: "onprem"})
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	if d.Name != "iks-vpn-onprem" || d.Namespace != vpnconn.Namespace || *d.Spec.Replicas != 1 {
		t.Errorf("deployment %s/%s replicas %d", d.Namespace, d.Name, *d.Spec.Replicas)
	}
	if !pod.HostNetwork || ctr.SecurityContext == nil || !*ctr.SecurityContext.Privileged || ctr.ImagePullPolicy != corev1.PullNever {
		t.Error("the gateway needs the host network, privileges and the carried image (never pulled)")
	}
	if pod.NodeSelector["vpn"] != "yes" || len(pod.Tolerations) != 3 || pod.Affinity.PodAntiAffinity == nil {
		t.Errorf("placement: selector %v tolerations %v", pod.NodeSelector, pod.Tolerations)
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	if env[EnvPSKFile] != pskMountDir+"/key" || env[EnvGeneration] != "3" || env[EnvAPIServer] != "https://10.0.0.1:6443" ||
		!strings.Contains(env[EnvSpec], `"subnet":"10.91.152.128/26"`) || strings.Contains(env[EnvSpec], "psk\":\"") {
		t.Errorf("env %v", env)
	}
	if pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "psk" {
		t.Errorf("the pre-shared key Secret is not mounted: %+v", pod.Volumes[0])
	}
	c.Spec.Remote.Subnet = "10.91.152.0/24"
	d2, _ := gatewayDeployment(c, p, Config{Image: "iks.local/strongswan:1", Cluster: cluster}, "k1", metav1.OwnerReference{})
	if d2.Spec.Template.Annotations[specHashAnnot] == d.Spec.Template.Annotations[specHashAnnot] {
		t.Error("a spec change must change the template (roll the gateway)")
	}
}

func TestCRDSchema(t *testing.T) {
	crd := CRD()
	v := crd.Spec.Versions[0]
	if crd.Name != vpnconn.CRDName || crd.Spec.Scope != "Cluster" || v.Subresources == nil || v.Subresources.Status == nil {
		t.Fatalf("CRD %s scope %s: want cluster-scoped with a status subresource", crd.Name, crd.Spec.Scope)
	}
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"ipsec", "local", "remote", "localSubnetNAT", "remoteSubnetNAT", "enableSingleSourceIP", "preshared",
		"nodeSelector", "tolerations", "loadBalancerIP", "connectUsingLoadBalancerIP", "enablePodSNAT"} {
		if _, ok := spec.Properties[f]; !ok {
			t.Errorf("spec.%s missing", f)
		}
	}
	if len(spec.Properties["ipsec"].Properties["auto"].Enum) != 2 {
		t.Error("ipsec.auto: want enum add|start")
	}
	// Every field of the Go types is in the schema: the API server
	// would prune a missing one, and the controller never see it.
	var walk func(path string, typ reflect.Type, props map[string]apiextv1.JSONSchemaProps)
	walk = func(path string, typ reflect.Type, props map[string]apiextv1.JSONSchemaProps) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			prop, ok := props[name]
			if !ok {
				t.Errorf("spec%s.%s (%s) missing from the CRD schema", path, name, f.Name)
				continue
			}
			if sub := f.Type; sub.Kind() == reflect.Struct && len(prop.Properties) > 0 {
				walk(path+"."+name, sub, prop.Properties)
			}
		}
	}
	walk("", reflect.TypeFor[vpnconn.Spec](), spec.Properties)
}

// A gateway whose Lease lapsed is deleted and its node tainted; the taint
// goes once the node's kubelet renews its own Lease.
func TestLostGatewayMoves(t *testing.T) {
	now := time.Now()
	old := metav1.NewMicroTime(now.Add(-10 * time.Second))
	fresh := metav1.NewMicroTime(now)
	cs := fake.NewClientset(
		&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "iks-vpn-lost", Namespace: vpnconn.Namespace},
			Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To("gw-lost"), LeaseDurationSeconds: ptr.To[int32](6), RenewTime: &old}},
		&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "iks-vpn-ok", Namespace: vpnconn.Namespace},
			Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To("gw-ok"), LeaseDurationSeconds: ptr.To[int32](6), RenewTime: &fresh}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gw-lost", Namespace: vpnconn.Namespace}, Spec: corev1.PodSpec{NodeName: "n1"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gw-ok", Namespace: vpnconn.Namespace}, Spec: corev1.PodSpec{NodeName: "n2"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
		&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease}, Spec: coordv1.LeaseSpec{RenewTime: &old}},
	)
	c := &Controller{cs: cs, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if err := c.checkGateways(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(vpnconn.Namespace).Get(ctx, "gw-lost", metav1.GetOptions{}); err == nil {
		t.Error("the lost gateway pod was not deleted")
	}
	if _, err := cs.CoreV1().Pods(vpnconn.Namespace).Get(ctx, "gw-ok", metav1.GetOptions{}); err != nil {
		t.Errorf("a live gateway was touched: %v", err)
	}
	n1, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if len(n1.Spec.Taints) != 1 || n1.Spec.Taints[0].Key != TaintGatewayLost || n1.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Fatalf("n1 taints %v", n1.Spec.Taints)
	}
	// The node comes back: its kubelet renews the node Lease.
	back := metav1.NewMicroTime(now.Add(5 * time.Second))
	l, _ := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "n1", metav1.GetOptions{})
	l.Spec.RenewTime = &back
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.checkGateways(ctx, now.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n1, _ = cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); len(n1.Spec.Taints) != 0 {
		t.Errorf("taint kept after the node came back: %v", n1.Spec.Taints)
	}
}
