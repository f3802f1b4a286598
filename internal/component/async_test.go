package component

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// gated is a component whose Start blocks until released.
type gated struct {
	name    string
	release chan struct{}
	err     error
	mu      *sync.Mutex
	order   *[]string
	stopped bool
}

func (g *gated) Name() string               { return g.name }
func (g *gated) Init(context.Context) error { return nil }
func (g *gated) Start(context.Context) error {
	if g.release != nil {
		<-g.release
	}
	g.mu.Lock()
	*g.order = append(*g.order, g.name)
	g.mu.Unlock()
	return g.err
}
func (g *gated) Stop(context.Context) error { g.stopped = true; return nil }

// A background component starts while the next ones do; its Await waits
// for it; a background failure fails the start at the Await and the
// component is stopped.
func TestBackgroundOverlapsAndAwaits(t *testing.T) {
	var mu sync.Mutex
	var order []string
	slow := &gated{name: "slow", release: make(chan struct{}), mu: &mu, order: &order}
	// slow is needed only after b, which releases it: the start can only
	// finish if slow, moved to the front, did not block the order.
	b := &Func{ID: "b", StartFn: func(context.Context) error {
		mu.Lock()
		order = append(order, "b")
		mu.Unlock()
		close(slow.release)
		return nil
	}}
	bg, rest := Hoist([]Component{&gated{name: "a", mu: &mu, order: &order}, b, slow}, "slow")
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), append([]Component{bg}, rest...)...)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[0] != "a" || order[1] != "b" || order[2] != "slow" {
		t.Errorf("start order %v, want a, b, then slow (released by b)", order)
	}
	if err := m.Stop(context.Background()); err != nil || !slow.stopped {
		t.Errorf("stop: %v, slow stopped %v", err, slow.stopped)
	}

	failing := &gated{name: "bad", err: errors.New("boom"), mu: &mu, order: &order}
	bg, rest = Hoist([]Component{failing, &gated{name: "c", mu: &mu, order: &order}}, "bad")
	m = NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), append([]Component{bg}, rest...)...)
	if err := m.Start(context.Background()); err == nil || !failing.stopped {
		t.Errorf("a failed background start: %v (stopped %v), want the error and a stop", err, failing.stopped)
	}
}
