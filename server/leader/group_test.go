package leader

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

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
		LeaseDuration: 1500 * time.Millisecond, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond,
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
