package netpol

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/knftables"
)

func webPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "client")}}}}}}
}

// A pod label change and a new pod only change set elements; a policy
// change rewrites that policy's chain; a deleted policy's chain and sets
// go away.
func TestWriterIncremental(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	w := NewWriter(fake)
	np := webPolicy()
	st, err := w.Apply(ctx, compileObjs(t, pods, namespaces, np))
	if err != nil || !st.Full {
		t.Fatalf("first apply: %+v %v, want a full one", st, err)
	}
	id := policyName("knp:app/web")
	peers := ruleSet(t, w.last, id+"-in", 0)
	if el, _ := fake.ListElements(ctx, "set", peers); len(el) != 1 || el[0].Key[0] != "172.30.1.3" {
		t.Fatalf("peer set after the first apply: %+v", el)
	}

	// The app namespace's client is relabelled away and a new local
	// client pod appears.
	changed := append([]*corev1.Pod(nil), pods...)
	relabelled := changed[2].DeepCopy()
	relabelled.Labels = map[string]string{"role": "none"}
	changed[2] = relabelled
	changed = append(changed, pod("app", "client2", node, "172.30.0.7", map[string]string{"role": "client"}))
	st, err = w.Apply(ctx, compileObjs(t, changed, namespaces, np))
	if err != nil {
		t.Fatal(err)
	}
	if st.Full || st.Chains != 0 || st.Added != 2 || st.Deleted != 1 {
		t.Errorf("pod changes: %+v, want no chain touched, 2 elements added (peer, local-pods), 1 deleted", st)
	}
	el, _ := fake.ListElements(ctx, "set", peers)
	if len(el) != 1 || el[0].Key[0] != "172.30.0.7" {
		t.Errorf("peer set after the label change: %+v, want only 172.30.0.7", el)
	}

	// Policy update: allow port 80 only.
	np2 := np.DeepCopy()
	np2.Spec.Ingress[0].Ports = []networkingv1.NetworkPolicyPort{{Port: portNum(80)}}
	if st, err = w.Apply(ctx, compileObjs(t, changed, namespaces, np2)); err != nil {
		t.Fatal(err)
	}
	if st.Chains != 1 {
		t.Errorf("policy update touched %d chains, want 1", st.Chains)
	}
	rules, err := fake.ListRules(ctx, id+"-in")
	if err != nil || len(rules) != 1 || !strings.Contains(rules[0].Rule, "th dport 80") {
		t.Errorf("policy chain after the update: %+v %v", rules, err)
	}

	// Policy deleted: its chain and sets go, nothing is isolated.
	if _, err = w.Apply(ctx, compileObjs(t, changed, namespaces)); err != nil {
		t.Fatal(err)
	}
	chains, _ := fake.List(ctx, "chain")
	sets, _ := fake.List(ctx, "set")
	for _, n := range append(chains, sets...) {
		if strings.HasPrefix(n, id) || n == peers {
			t.Errorf("%s left after the policy was deleted", n)
		}
	}
	slices.Sort(sets)
	if strings.Join(sets, ",") != strings.Join(sortedKeys(map[string]bool{SetLocalPods: true, SetIngressIso: true, SetEgressIso: true}), ",") {
		t.Errorf("sets left after the last policy was deleted: %v", sets)
	}
	if el, _ := fake.ListElements(ctx, "set", SetIngressIso); len(el) != 0 {
		t.Errorf("isolated pods after the delete: %+v", el)
	}
}

// After a failed run the next Apply replaces the table fully.
func TestWriterRecoversWithFullApply(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	w := NewWriter(fake)
	if _, err := w.Apply(ctx, compileObjs(t, pods, namespaces, webPolicy())); err != nil {
		t.Fatal(err)
	}
	w.last = nil // as after a failure
	st, err := w.Apply(ctx, compileObjs(t, pods, namespaces, webPolicy()))
	if err != nil || !st.Full {
		t.Fatalf("apply after failure: %+v %v", st, err)
	}
}
