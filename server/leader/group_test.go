package leader

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/kubeclients"
)

// running counts, per candidate, the components started and not stopped.
type running struct {
	mu  sync.Mutex
	now map[string]int
}

func (r *running) add(id string, d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now[id] += d
}

func (r *running) leaders() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, n := range r.now {
		if n > 0 {
			out = append(out, id)
		}
	}
	return out
}

func group(t *testing.T, clients *kubeclients.Clients, id string, r *running, builds *int) *Group {
	t.Helper()
	return New(Config{Clients: clients, Namespace: "kube-system", Name: "iks-controllers", Identity: id,
		// Whole seconds: the Lease records its duration in seconds.
		LeaseDuration: 3 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond,
		New: func() ([]component.Component, error) {
			*builds++
			return []component.Component{&component.Func{ID: "ctl",
				StartFn: func(context.Context) error { r.add(id, 1); return nil },
				StopFn:  func(context.Context) error { r.add(id, -1); return nil },
			}}, nil
		}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Of two candidates one runs the components; when it stops, the other
// takes over with a fresh set, and the Lease names it.
func TestOneLeaderAndTakeover(t *testing.T) {
	cs := fake.NewClientset()
	clients := kubeclients.ForTest(cs, nil)
	r := &running{now: map[string]int{}}
	var buildsA, buildsB int
	a, b := group(t, clients, "a", r, &buildsA), group(t, clients, "b", r, &buildsB)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, g := range []*Group{a, b} {
		if err := g.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := r.leaders()
	if len(l) != 1 {
		t.Fatalf("after both started, %v run the components, want exactly one", l)
	}
	first, other := a, b
	if l[0] == "b" {
		first, other = b, a
	}
	// Stay with one leader for a few renewals.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := r.leaders(); len(got) != 1 || got[0] != l[0] {
			t.Fatalf("leaders %v while %s held the Lease", got, l[0])
		}
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.leaders()
		if len(got) == 1 && got[0] == other.cfg.Identity {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s stopped, leaders %v; want %s", first.cfg.Identity, got, other.cfg.Identity)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lease, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "iks-controllers", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != other.cfg.Identity {
		t.Errorf("Lease holder %v, want %s", h, other.cfg.Identity)
	}
	if err := other.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.leaders(); len(got) != 0 {
		t.Errorf("after both stopped, %v still run the components", got)
	}
	if buildsA != 1 || buildsB != 1 {
		t.Errorf("component sets built: a %d, b %d; want one each (Init's set serves the first term)", buildsA, buildsB)
	}
}

// A bad timing is refused by Init, naming the values.
func TestInitRefusesBadTiming(t *testing.T) {
	g := New(Config{Clients: kubeclients.ForTest(fake.NewClientset(), nil), Namespace: "kube-system", Name: "x", Identity: "a",
		LeaseDuration: time.Second, RenewDeadline: 2 * time.Second, New: func() ([]component.Component, error) { return nil, nil }},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := g.Init(context.Background()); err == nil {
		t.Error("Init accepted a renew deadline above the lease duration")
	}
}

// A leader whose Lease is taken stops its components; it stands again
// and, once the other holder stops renewing, leads with a fresh set.
func TestLostLeaseStopsThenLeadsAgain(t *testing.T) {
	cs := withResourceVersions(fake.NewClientset())
	r := &running{now: map[string]int{}}
	var builds int
	g := group(t, kubeclients.ForTest(cs, nil), "a", r, &builds)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Stop(context.Background())
	if l := r.leaders(); len(l) != 1 {
		t.Fatalf("leaders %v, want a", l)
	}
	lease, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "iks-controllers", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, now := "intruder", metav1.NewMicroTime(time.Now())
	lease.Spec.HolderIdentity, lease.Spec.RenewTime, lease.Spec.AcquireTime = &other, &now, &now
	if _, err := cs.CoordinationV1().Leases("kube-system").Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s (running %v, builds %d)", what, r.leaders(), builds)
			}
		}
	}
	wait("components stopped after the Lease was taken", func() bool { return len(r.leaders()) == 0 })
	wait("leading again with a fresh set", func() bool { return len(r.leaders()) == 1 && builds == 2 })
}

// withResourceVersions makes the fake refuse a Lease update from a stale
// copy, as the apiserver does (the fake tracker does not): a leader that
// lost its Lease then learns it on its next renewal.
func withResourceVersions(cs *fake.Clientset) *fake.Clientset {
	var mu sync.Mutex
	rv := 0
	cs.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		o, ok := a.(interface{ GetObject() runtime.Object })
		if !ok || (a.GetVerb() != "create" && a.GetVerb() != "update") {
			return false, nil, nil
		}
		obj := o.GetObject()
		if a.GetVerb() == "update" {
			l := obj.(*coordinationv1.Lease)
			cur, err := cs.Tracker().Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), l.Namespace, l.Name)
			if err == nil && cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
				return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), l.Name, fmt.Errorf("stale resourceVersion %s", l.ResourceVersion))
			}
		}
		rv++
		obj.(*coordinationv1.Lease).ResourceVersion = fmt.Sprint(rv)
		return false, nil, nil
	})
	return cs
}
