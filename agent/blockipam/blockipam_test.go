package blockipam

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iks-dev/iks/agent/ipam"
	"github.com/iks-dev/iks/internal/netapi"
)

type rig struct {
	m   *Manager
	dyn *dynfake.FakeDynamicClient
	cs  *fake.Clientset
}

func newRig(t *testing.T, node, uid string) *rig {
	t.Helper()
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schemaGVR]string{netapi.IPAMBlockGVR: netapi.IPAMBlockList})
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, UID: types.UID(uid)}})
	m := New(Config{NodeName: node, StoreDir: filepath.Join(t.TempDir(), "ipam")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The fake has no server-side apply: claims (apply) create, or
	// conflict on spec.node as the apiserver would.
	dyn.PrependReactor("patch", "ipamblocks", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(pa.GetPatch()); err != nil {
			return true, nil, err
		}
		gr := netapi.IPAMBlockGVR.GroupResource()
		old, err := dyn.Tracker().Get(netapi.IPAMBlockGVR, "", pa.GetName())
		if apierrors.IsNotFound(err) {
			return true, u, dyn.Tracker().Create(netapi.IPAMBlockGVR, u, "")
		}
		if err != nil {
			return true, nil, err
		}
		have, _, _ := unstructured.NestedString(old.(*unstructured.Unstructured).Object, "spec", "node")
		want, _, _ := unstructured.NestedString(u.Object, "spec", "node")
		if have != want {
			return true, nil, apierrors.NewConflict(gr, pa.GetName(), fmt.Errorf("spec.node is managed by another manager"))
		}
		return true, old, nil
	})
	m.cs, m.blocks = cs, netapi.NewBlockClientFor(dyn)
	m.network = netapi.ClusterNetwork{PodCIDR: netip.MustParsePrefix("172.30.0.0/24"),
		ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"), ClusterDomain: "cluster.local", BlockSize: 27}
	return &rig{m: m, dyn: dyn, cs: cs}
}

func (r *rig) create(t *testing.T, cidr, node, uid string) {
	t.Helper()
	if _, err := r.m.blocks.Create(context.Background(), netapi.NewIPAMBlock(netip.MustParsePrefix(cidr), node, uid)); err != nil {
		t.Fatal(err)
	}
}

func TestClaimsLowestFreeBlockAndSkipsRaces(t *testing.T) {
	r := newRig(t, "n1", "u1")
	ctx := context.Background()
	r.create(t, "172.30.0.0/27", "n2", "u2")
	// Another node wins the race for 172.30.0.32/27 after our list.
	raced := false
	// Claims apply: the race lost is a conflict on spec.node.
	r.dyn.PrependReactor("patch", "ipamblocks", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if name := a.(k8stesting.PatchAction).GetName(); name == "172-30-0-32-27" && !raced {
			raced = true
			u, err := netapi.NewIPAMBlock(netip.MustParsePrefix("172.30.0.32/27"), "n3", "u3").ToUnstructured()
			if err != nil {
				return true, nil, err
			}
			if err := r.dyn.Tracker().Create(netapi.IPAMBlockGVR, u, ""); err != nil {
				return true, nil, err
			}
			return true, nil, apierrors.NewConflict(netapi.IPAMBlockGVR.GroupResource(), name, fmt.Errorf("spec.node is managed by iks-ipam/n3"))
		}
		return false, nil, nil
	})
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := r.m.Blocks(); len(got) != 1 || got[0].String() != "172.30.0.64/27" {
		t.Fatalf("claimed %v, want the lowest free block 172.30.0.64/27 (0/27 taken, 32/27 lost in a race)", got)
	}
	b, err := r.m.blocks.Get(ctx, "172-30-0-64-27")
	if err != nil || b.Spec.Node != "n1" || !b.OwnedBy("n1", "u1") {
		t.Fatalf("block object %+v, %v; want node n1 owned by Node uid u1", b, err)
	}
	if stored, _ := r.m.store.Blocks(); len(stored) != 1 || stored[0] != r.m.Blocks()[0] {
		t.Errorf("store block set %v, want %v", stored, r.m.Blocks())
	}
	// A restart (a new manager on the same store) keeps the block.
	r.m.own = nil
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := r.m.Blocks(); len(got) != 1 || got[0].String() != "172.30.0.64/27" {
		t.Errorf("after restart blocks = %v, want the same 172.30.0.64/27", got)
	}
	// A restart while the server is away uses the store's set.
	r.m.own, r.m.uid, r.m.ready = nil, "", true
	if !r.m.useStoredBlocks() {
		t.Fatal("useStoredBlocks found no stored blocks")
	}
	if got := r.m.Blocks(); len(got) != 1 || got[0].String() != "172.30.0.64/27" {
		t.Errorf("stored blocks = %v, want 172.30.0.64/27", got)
	}
	if _, err := r.m.grow(ctx); err == nil {
		t.Error("grow claimed a block without knowing the Node's UID")
	}
}

func TestGrowOnlyWhenFullAndReportStatus(t *testing.T) {
	r := newRig(t, "n1", "u1")
	ctx := context.Background()
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	r.m.ready = true
	for i := range 29 {
		if _, err := r.m.store.AllocateFromSet(string(rune('a'+i)) + "/eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := r.m.grow(ctx); err != nil || len(got) != 1 {
		t.Fatalf("grow with a free address = %v, %v; want no new block", got, err)
	}
	if _, err := r.m.store.AllocateFromSet("last/eth0"); err != nil {
		t.Fatal(err)
	}
	got, err := r.m.grow(ctx)
	if err != nil || len(got) != 2 || got[1].String() != "172.30.0.32/27" {
		t.Fatalf("grow when full = %v, %v; want a second block 172.30.0.32/27", got, err)
	}
	if _, err := r.m.store.AllocateFromSet("more/eth0"); err != nil {
		t.Fatalf("allocation after grow: %v", err)
	}
	r.m.report(ctx)
	for name, want := range map[string]netapi.IPAMBlockStatus{"172-30-0-0-27": {Allocated: 30, Capacity: 30},
		"172-30-0-32-27": {Allocated: 1, Capacity: 30}} {
		b, err := r.m.blocks.Get(ctx, name)
		if err != nil || b.Status != want {
			t.Errorf("status of %s = %+v, %v; want %+v", name, b.Status, err, want)
		}
	}
}

func TestReparentAndReclaimAfterNodeRecreated(t *testing.T) {
	r := newRig(t, "n1", "u1")
	ctx := context.Background()
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.store.AllocateFromSet("pod/eth0"); err != nil {
		t.Fatal(err)
	}
	r.create(t, "172.30.0.64/27", "n1", "u1")
	// The Node is re-created with a new UID; the garbage collector already
	// deleted one block (which still holds a pod's address).
	if err := r.cs.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.m.blocks.Delete(ctx, "172-30-0-0-27"); err != nil {
		t.Fatal(err)
	}
	if err := r.m.reconcile(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"172-30-0-0-27", "172-30-0-64-27"} {
		b, err := r.m.blocks.Get(ctx, name)
		if err != nil || !b.OwnedBy("n1", "u2") || len(b.OwnerReferences) != 1 {
			t.Errorf("block %s = %+v, %v; want it owned by the new Node uid u2 only", name, b, err)
		}
	}
	if got := r.m.Blocks(); len(got) != 2 {
		t.Errorf("blocks = %v, want both", got)
	}
}

func TestBlockStatusMath(t *testing.T) {
	blocks := []netip.Prefix{netip.MustParsePrefix("172.30.0.0/27"), netip.MustParsePrefix("172.30.0.32/27")}
	allocs := []ipam.Allocation{
		{IP: netip.MustParseAddr("172.30.0.1"), Block: netip.MustParsePrefix("172.30.0.0/24")}, // recorded under an old block
		{IP: netip.MustParseAddr("172.30.0.2"), Block: blocks[0]},
		{IP: netip.MustParseAddr("172.30.0.33"), Block: blocks[1]},
		{IP: netip.MustParseAddr("172.30.1.1"), Block: netip.MustParsePrefix("172.30.1.0/27")}, // not ours any more
	}
	got := blockStatus(allocs, blocks)
	want := map[netip.Prefix]netapi.IPAMBlockStatus{blocks[0]: {Allocated: 2, Capacity: 30}, blocks[1]: {Allocated: 1, Capacity: 30}}
	if len(got) != 2 || got[blocks[0]] != want[blocks[0]] || got[blocks[1]] != want[blocks[1]] {
		t.Errorf("blockStatus = %+v, want %+v", got, want)
	}
}

type schemaGVR = schema.GroupVersionResource

// At start a node claims and re-reads its blocks without a LIST (which
// waits on the apiserver's watch cache right after its start); the
// loop's reconciles list.
func TestStartWithoutList(t *testing.T) {
	r := newRig(t, "n1", "u1")
	ctx := context.Background()
	lists := 0
	r.dyn.PrependReactor("list", "ipamblocks", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists++
		return false, nil, nil
	})
	r.create(t, "172.30.0.0/27", "n2", "u2")
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	r.m.own = nil // a restart on the same store
	if err := r.m.reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := r.m.Blocks(); len(got) != 1 || got[0].String() != "172.30.0.32/27" {
		t.Fatalf("blocks %v, want 172.30.0.32/27", got)
	}
	if lists != 0 {
		t.Errorf("%d LISTs of IPAMBlocks at start, want none", lists)
	}
	if err := r.m.reconcile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if lists != 1 {
		t.Errorf("the loop's reconcile made %d LISTs, want 1", lists)
	}
}
