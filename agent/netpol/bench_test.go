package netpol

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/knftables"
)

// synthetic returns pods pods in 100 namespaces over 100 nodes (node n1
// is this node) and policies policies, 10 app labels per namespace.
func synthetic(pods, policies int) ([]*corev1.Pod, []*corev1.Namespace, []*networkingv1.NetworkPolicy) {
	var ps []*corev1.Pod
	var nss []*corev1.Namespace
	var nps []*networkingv1.NetworkPolicy
	for i := range 100 {
		nss = append(nss, nsObj(fmt.Sprintf("ns%d", i), map[string]string{"team": fmt.Sprint(i % 10)}))
	}
	for i := range pods {
		ps = append(ps, pod(fmt.Sprintf("ns%d", i%100), fmt.Sprintf("p%d", i), fmt.Sprintf("n%d", i%100+1),
			fmt.Sprintf("172.30.%d.%d", i/250, i%250+1), map[string]string{"app": fmt.Sprint(i % 10), "role": fmt.Sprint(i % 7)},
			corev1.ContainerPort{Name: "http", ContainerPort: 8080}))
	}
	for i := range policies {
		nps = append(nps, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", i%100), Name: fmt.Sprintf("np%d", i)},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", fmt.Sprint(i%10)),
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", fmt.Sprint(i%7))}, {NamespaceSelector: sel("team", fmt.Sprint(i%10))}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: portName("http")}, {Port: portNum(9000 + i%100)}}}}}})
	}
	return ps, nss, nps
}

// BenchmarkCompile: the whole Program for 10,000 pods / 5,000 policies.
func BenchmarkCompile(b *testing.B) {
	ps, nss, nps := synthetic(10000, 5000)
	for b.Loop() {
		pols, eps := Translate(ps, nss, nps, func(error) {})
		Compile(pols, eps, "n1", "cali")
	}
}

// BenchmarkOnePodChange: one pod's label change up to the nft
// transaction (the kernel's share is not in it). incremental is the
// engine's path (UpdatePods); recompile translates, compiles and diffs
// everything.
func BenchmarkOnePodChange(b *testing.B) {
	ps, nss, nps := synthetic(10000, 5000)
	nft := knftables.NewFake(knftables.InetFamily, TableName)
	pols, eps := Translate(ps, nss, nps, func(error) {})
	last := Compile(pols, eps, "n1", "cali")
	nsLabels := map[string]map[string]string{}
	for _, ns := range nss {
		nsLabels[ns.Name] = ns.Labels
	}
	b.Run("incremental", func(b *testing.B) {
		old, _ := FromPod(ps[0], nsLabels[ps[0].Namespace])
		ops := 0
		for i := 0; b.Loop(); i++ {
			p := ps[0].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprint(i % 10), "role": fmt.Sprint(i % 7)}
			ps[0] = p
			now, _ := FromPod(p, nsLabels[p.Namespace])
			next := UpdatePods(last, []PodChange{{Old: old, New: now}})
			old = now
			tx := nft.NewTransaction()
			applyDelta(tx, next)
			ops += tx.NumOperations()
			last = next
		}
		b.ReportMetric(float64(ops)/float64(b.N), "nft-ops/op")
	})
	b.Run("recompile", func(b *testing.B) {
		ops := 0
		for i := 0; b.Loop(); i++ {
			p := ps[0].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprint(i % 10), "role": fmt.Sprint(i % 7)}
			ps[0] = p
			pols, eps := Translate(ps, nss, nps, func(error) {})
			next := Compile(pols, eps, "n1", "cali")
			tx := nft.NewTransaction()
			st := diff(tx, last, next)
			if st.Chains != 0 {
				b.Fatalf("a pod change rewrote %d chains", st.Chains)
			}
			ops += tx.NumOperations()
			last = next
		}
		b.ReportMetric(float64(ops)/float64(b.N), "nft-ops/op")
	})
}
