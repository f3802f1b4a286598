package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/agent/netpol"
)

func calicoObj(kind, name string, lbl map[string]any, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "projectcalico.org/v3", "kind": kind,
		"metadata": map[string]any{"name": name, "labels": lbl}, "spec": spec}}
}

func TestPolicyShowNode(t *testing.T) {
	var objs netpol.CalicoObjects
	objs[0] = append(objs[0],
		calicoObj("GlobalNetworkPolicy", "deny-nodeports", nil, map[string]any{"order": 1100.0, "preDNAT": true, "applyOnForward": true,
			"selector": "ibm.role=='worker_public'", "ingress": []any{map[string]any{"action": "Deny", "protocol": "TCP",
				"destination": map[string]any{"ports": []any{"30000:32767"}}}}}),
		calicoObj("GlobalNetworkPolicy", "allow-all-outbound", nil, map[string]any{"order": 1900.0, "applyOnForward": true,
			"selector": "ibm.role in {'worker_public'}", "types": []any{"Egress"}, "egress": []any{map[string]any{"action": "Allow"}}}),
		calicoObj("GlobalNetworkPolicy", "allow-icmp", nil, map[string]any{"order": 1500.0,
			"selector": "ibm.role == 'worker_public'", "ingress": []any{map[string]any{"action": "Allow", "protocol": "ICMP"}}}),
	)
	objs[2] = append(objs[2],
		calicoObj("HostEndpoint", "w1-worker-public", map[string]any{"ibm.role": "worker_public"}, map[string]any{"node": "w1", "interfaceName": "eth1", "expectedIPs": []any{"10.0.4.2"}}),
		calicoObj("HostEndpoint", "w1-worker-private", map[string]any{"ibm.role": "worker_private"}, map[string]any{"node": "w1", "interfaceName": "eth0", "expectedIPs": []any{"10.0.1.2"}}),
		calicoObj("HostEndpoint", "w2-worker-private", map[string]any{"ibm.role": "worker_private"}, map[string]any{"node": "w2", "interfaceName": "eth0"}),
	)
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w3"}})
	var warn bytes.Buffer
	rows, err := readHostRows(context.Background(), cs, &objs, "w1", &warn)
	if err != nil || warn.Len() > 0 {
		t.Fatalf("%v %s", err, warn.String())
	}
	var out bytes.Buffer
	printHostRows(&out, rows)
	for _, want := range []string{
		"hostendpoint w1-worker-private (eth0, 10.0.1.2)\n",
		"  ingress:           deny (no policy)\n",
		"hostendpoint w1-worker-public (eth1, 10.0.4.2)\n",
		"  pre-DNAT ingress:  deny-nodeports(1100)\n",
		"  ingress:           allow-icmp(1500)\n",
		"  egress:            allow-all-outbound(1900)\n",
		"  forwarded ingress: allow (no applyOnForward policy)\n",
		"  forwarded egress:  allow-all-outbound(1900)\n",
		"failsafe (never cut): in tcp 22,",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("policy show --node lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "w2-") {
		t.Errorf("another node's host endpoint shown:\n%s", out.String())
	}
	if rows, err := readHostRows(context.Background(), cs, &objs, "w3", &warn); err != nil || len(rows) != 0 {
		t.Errorf("node without host endpoints: %v %v", rows, err)
	}
	if _, err := readHostRows(context.Background(), cs, &objs, "nope", &warn); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown node: %v", err)
	}
}
