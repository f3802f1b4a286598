package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
)

func TestLBStatus(t *testing.T) {
	pub, _ := lbpool.Parse(lbpool.Public, "", "10.95.1.64/29")
	priv, _ := lbpool.Parse(lbpool.Private, "", "10.95.1.80/29")
	data, err := lbpool.Encode([]lbpool.Subnet{pub, priv})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	svc := func(name, ip, typ string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
		if typ != "" {
			s.Annotations[lbpool.AnnotationIPType] = typ
		}
		if ip != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		}
		return s
	}
	lease := func(name, holder string, renewed time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: lbpool.Namespace, Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](2),
				RenewTime: &metav1.MicroTime{Time: renewed}}}
	}
	node := func(name, private, public string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{topology.LabelZone: "dal10", topology.LabelPrivateVLAN: "10.95.1.0-24"},
			Annotations: map[string]string{topology.AnnotationPrivateCIDR: private}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if public != "" {
			n.Annotations[topology.AnnotationPublicCIDR] = public
			n.Labels[topology.LabelPublicVLAN] = "10.95.1.0-24"
		}
		return n
	}
	cs := fake.NewClientset(
		node("lb-w1", "10.95.1.2/24", "10.95.1.2/24"), node("lb-w2", "10.95.1.3/24", ""), node("lb-w3", "10.96.1.3/24", "10.96.1.3/24"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: lbpool.ConfigMapNamespace, Name: lbpool.ConfigMapName},
			Data: map[string]string{lbpool.ConfigMapKey: data}},
		svc("web", "10.95.1.68", ""), svc("db", "10.95.1.84", "private"), svc("wait", "", ""),
		lease("ip-10-95-1-68", "lb-w1", now), lease("ip-10-95-1-84", "lb-w2", now.Add(-time.Minute)), // expired
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e1"}, Type: corev1.EventTypeWarning,
			InvolvedObject: corev1.ObjectReference{Kind: "Service", Name: "wait"}, Reason: "PoolExhausted", Message: "the public LoadBalancer pool is exhausted"},
	)
	st, err := readLBStatus(context.Background(), cs, now)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	if err := printLBStatus(cmd, st); err != nil {
		t.Fatal(err)
	}
	// Compare with single spaces: column widths follow the content.
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"10.95.1.68 default/web public 10.95.1.64/29 dal10 10.95.1.0-24 lb-w1 lb-w1",
		"10.95.1.84 default/db private 10.95.1.80/29 dal10 10.95.1.0-24 none lb-w1,lb-w2",
		"<pending> default/wait public",
		"pending default/wait: PoolExhausted: the public LoadBalancer pool is exhausted",
		"public 10.95.1.64/29 dal10 10.95.1.0-24 10.95.1.67 10.95.1.68-10.95.1.71 1/4 lb-w1",
		"private 10.95.1.80/29 dal10 10.95.1.0-24 10.95.1.83 10.95.1.84-10.95.1.87 1/4 lb-w1,lb-w2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("iks lb status lacks %q:\n%s", want, text)
		}
	}
}
