package netpol

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// TestUpdatePodsMatchesCompile: after each random pod change (labels,
// named ports, node, deletion, addition), UpdatePods gives the same sets
// as a full compile, and the writer sends only element changes.
func TestUpdatePodsMatchesCompile(t *testing.T) {
	ps, nss, nps := synthetic(600, 150)
	calico := mustPol(t, "", "calico", `
selector: app == '3'
types: [Ingress, Egress]
ingress:
- action: Allow
  protocol: TCP
  source: {selector: role == '2', namespaceSelector: "team in {'1','2'}"}
  destination: {ports: [http]}
egress: [{action: Deny, destination: {notSelector: role == '5'}}]
`)
	compile := func(ps []*corev1.Pod) (*Program, map[string]*Endpoint) {
		pols, eps := Translate(ps, nss, nps, func(err error) { t.Fatal(err) })
		byKey := map[string]*Endpoint{}
		for _, e := range eps {
			byKey[e.Key()] = e
		}
		return CompileInput(&Input{Policies: append(pols, calico), Endpoints: eps, Node: "n1", VethPrefix: "cali"}), byKey
	}
	prog, eps := compile(ps)
	nft := knftables.NewFake(knftables.InetFamily, TableName)
	w := NewWriter(nft)
	if _, err := w.Apply(t.Context(), prog); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	nsLabels := map[string]map[string]string{}
	for _, ns := range nss {
		nsLabels[ns.Name] = ns.Labels
	}
	for step := range 300 {
		i := rng.IntN(len(ps))
		p := ps[i].DeepCopy()
		switch step % 5 {
		case 0:
			p.Labels = map[string]string{"app": fmt.Sprint(rng.IntN(10)), "role": fmt.Sprint(rng.IntN(7))}
		case 1:
			p.Spec.Containers[0].Ports = nil
		case 2:
			p.Spec.NodeName = fmt.Sprintf("n%d", rng.IntN(3)+1)
		case 3:
			p.Status.Phase = corev1.PodSucceeded // gone from policy
		case 4:
			p.Status.Phase = corev1.PodRunning
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(8000 + rng.IntN(3))}}
		}
		ps[i] = p
		var change PodChange
		change.Old = eps[p.Namespace+"/"+p.Name]
		if e, ok := FromPod(p, nsLabels[p.Namespace]); ok {
			change.New = e
			eps[e.Key()] = e
		} else {
			delete(eps, p.Namespace+"/"+p.Name)
		}
		prog = UpdatePods(prog, []PodChange{change})
		st, err := w.Apply(t.Context(), prog)
		if err != nil {
			t.Fatal(err)
		}
		if st.Full || st.Chains != 0 {
			t.Fatalf("step %d: a pod change rewrote chains: %+v", step, st)
		}
		want, _ := compile(ps)
		for name, s := range want.Sets {
			if got := sortedKeys(prog.Sets[name].Elements); !slices.Equal(got, sortedKeys(s.Elements)) {
				t.Fatalf("step %d (pod %s): set %s (%s)\n got %v\nwant %v", step, p.Name, name, s.Comment, got, sortedKeys(s.Elements))
			}
		}
		if len(want.Sets) != len(prog.Sets) {
			t.Fatalf("step %d: %d sets, want %d", step, len(prog.Sets), len(want.Sets))
		}
	}
	// What the writer sent matches: the fake table's elements are the
	// Program's.
	for name, s := range prog.Sets {
		elems, err := nft.ListElements(t.Context(), "set", name)
		if err != nil {
			t.Fatal(err)
		}
		if len(elems) != len(s.Elements) {
			t.Errorf("set %s: %d elements in the table, %d in the Program", name, len(elems), len(s.Elements))
		}
	}
}
