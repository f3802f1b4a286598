package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPolicyShow(t *testing.T) {
	pod := func(name string, lbl map[string]string, ip string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, Labels: lbl},
			Spec:   corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}}
	}
	np := func(name string, sel map[string]string, types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types}}
	}
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}},
		pod("web", map[string]string{"app": "web"}, "172.30.0.2"), pod("db", map[string]string{"app": "db"}, "172.30.0.3"),
		np("deny-all", nil, networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
		np("web-in", map[string]string{"app": "web"}, networkingv1.PolicyTypeIngress),
	)
	var warn bytes.Buffer
	rows, err := readPolicyRows(context.Background(), cs, nil, "", "", "", &warn)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printPolicyRows(&out, rows); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"app/db   w1    172.30.0.3  app/deny-all             app/deny-all",
		"app/web  w1    172.30.0.2  app/deny-all,app/web-in  app/deny-all",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("policy show lacks %q:\n%s", want, out.String())
		}
	}
	rows, err = readPolicyRows(context.Background(), cs, nil, "", "app", "web", &warn)
	if err != nil || len(rows) != 1 || rows[0].Pod != "app/web" {
		t.Errorf("--pod app/web: %+v %v", rows, err)
	}
	if _, err := readPolicyRows(context.Background(), cs, nil, "", "app", "nope", &warn); err == nil || !strings.Contains(err.Error(), "app/nope") {
		t.Errorf("unknown pod: %v", err)
	}
}
