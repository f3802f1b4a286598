package netpol

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// TestEngineSync: the engine's loop body on informer caches: a full sync,
// then pod changes re-check only those pods (no chain touched, the same
// sets as a full compile), and an address moving between pods or a
// policy change recompiles.
func TestEngineSync(t *testing.T) {
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	podIx, nsIx, npIx, saIx := idx(), idx(), idx(), idx()
	src := &sources{pods: corelisters.NewPodLister(podIx), namespaces: corelisters.NewNamespaceLister(nsIx),
		netpols: networkinglisters.NewNetworkPolicyLister(npIx), serviceAccounts: corelisters.NewServiceAccountLister(saIx),
		calico: func() *CalicoObjects { return &CalicoObjects{} }}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nsIx.Add(nsObj("app", map[string]string{"team": "a"})))
	web := pod("app", "web", node, "172.30.0.2", map[string]string{"app": "web"})
	cli := pod("app", "cli", node, "172.30.0.3", map[string]string{"role": "client"})
	must(podIx.Add(web))
	must(podIx.Add(cli))
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "client")}}}}}}
	must(npIx.Add(np))

	nft := knftables.NewFake(knftables.InetFamily, TableName)
	e := New(Config{NodeName: node}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.writer = NewWriter(nft)
	e.changed()
	ctx := context.Background()
	must(e.sync(ctx, src))
	full := func() *Program {
		sn, err := src.snapshot()
		must(err)
		pols, eps := Translate(sn.pods, sn.namespaces, sn.netpols, func(error) {})
		return CompileInput(&Input{Policies: pols, Endpoints: eps, Node: node, VethPrefix: "cali"})
	}
	same := func(what string) {
		t.Helper()
		want := full()
		for name, s := range want.Sets {
			if got, w := sortedKeys(e.prog.Sets[name].Elements), sortedKeys(s.Elements); !slices.Equal(got, w) {
				t.Errorf("%s: set %s (%s) = %v, want %v", what, name, s.Comment, got, w)
			}
		}
	}
	same("first sync")

	// A new client pod and a relabelled one: incremental.
	cli2 := pod("app", "cli2", node, "172.30.0.4", map[string]string{"role": "client"})
	must(podIx.Add(cli2))
	e.podChanged(cli2)
	cliOther := cli.DeepCopy()
	cliOther.Labels = map[string]string{"role": "other"}
	must(podIx.Update(cliOther))
	e.podChanged(cliOther)
	before := e.prog
	must(e.sync(ctx, src))
	if e.prog.base != before {
		t.Error("a pod change recompiled")
	}
	same("pods changed")

	// A deleted pod.
	must(podIx.Delete(cli2))
	e.podChanged(cache.DeletedFinalStateUnknown{Key: "app/cli2", Obj: cli2})
	must(e.sync(ctx, src))
	same("pod deleted")

	// web's address goes to a new pod while web's object lingers (being
	// deleted): recompiled (Translate decides who has it: the live pod).
	deleting := web.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	must(podIx.Update(deleting))
	e.podChanged(deleting)
	must(e.sync(ctx, src))
	thief := pod("app", "thief", node, "172.30.0.2", map[string]string{"role": "client"})
	must(podIx.Add(thief))
	e.podChanged(thief)
	before = e.prog
	must(e.sync(ctx, src))
	if e.prog.base == before {
		t.Error("an address shared by two pods was handled incrementally")
	}
	same("address reused")
	// The pod that won it goes: the other one has it again (the address
	// was contested: recompiled).
	must(podIx.Delete(thief))
	e.podChanged(thief)
	before = e.prog
	must(e.sync(ctx, src))
	if e.prog.base == before {
		t.Error("a contested address was handled incrementally")
	}
	same("contested address released")
	if got := sortedKeys(e.prog.Sets[SetIngressIso].Elements); !slices.Equal(got, []string{"172.30.0.2"}) {
		t.Errorf("web not isolated again after the thief left: %v", got)
	}

	// A policy change recompiles.
	must(npIx.Delete(np))
	e.changed()
	before = e.prog
	must(e.sync(ctx, src))
	if e.prog.base == before {
		t.Error("a policy change was handled incrementally")
	}
	same("policy deleted")
	if _, ok := e.prog.Sets[SetIngressIso]; !ok || len(e.prog.Sets[SetIngressIso].Elements) != 0 {
		t.Errorf("pods still isolated after the policy is gone: %v", e.prog.Sets[SetIngressIso])
	}
}
