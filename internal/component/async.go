package component

import (
	"context"
	"fmt"
	"slices"
)

// Background starts a component while the ones after it start too: its
// Start (and Ready) run in a goroutine, and an Await placed later in the
// order waits for them. It is for components that need nothing from those
// started between the two (containerd beside the control plane, a
// server controller installing its CRD beside the local node).
type Background struct {
	c    Component
	done chan struct{}
	err  error
}

// Name implements Component.
func (b *Background) Name() string { return b.c.Name() + " (background)" }

// Init implements Component; it runs in order, like every Init.
func (b *Background) Init(ctx context.Context) error { return b.c.Init(ctx) }

// Start launches the component's Start and Ready and returns at once.
// ctx must stay valid until the Await has returned (the manager's start
// context does).
func (b *Background) Start(ctx context.Context) error {
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		if b.err = b.c.Start(ctx); b.err != nil {
			return
		}
		if r, ok := b.c.(Readier); ok {
			if err := r.Ready(ctx); err != nil {
				b.err = fmt.Errorf("%s did not become ready: %w", b.c.Name(), err)
			}
		}
	}()
	return nil
}

// Stop waits for a pending Start (or ctx) and stops the component.
func (b *Background) Stop(ctx context.Context) error {
	if b.done != nil {
		select {
		case <-b.done:
		case <-ctx.Done():
		}
	}
	return b.c.Stop(ctx)
}

// Healthy implements Healther when the component does.
func (b *Background) Healthy() error {
	if h, ok := b.c.(Healther); ok {
		return h.Healthy()
	}
	return nil
}

// Await is the point in the start order where a Background component
// must be running: its Start waits for the component's Start and Ready.
type Await struct{ B *Background }

// Name implements Component: the component's own name, so the start log
// reads "containerd ready" where it is awaited.
func (a *Await) Name() string { return a.B.c.Name() }

// Init implements Component.
func (a *Await) Init(context.Context) error { return nil }

// Start waits for the background component.
func (a *Await) Start(ctx context.Context) error {
	if a.B.done == nil {
		return fmt.Errorf("%s was never started in the background", a.B.c.Name())
	}
	select {
	case <-a.B.done:
		return a.B.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", a.B.c.Name(), ctx.Err())
	}
}

// Stop implements Component; the Background entry stops the component.
func (a *Await) Stop(context.Context) error { return nil }

// Hoist moves the component named name out of cs to run in the
// background from the front of the order: it returns that Background
// (to place first) and cs with an Await in its stead. It returns nil and
// cs unchanged when no component has that name.
func Hoist(cs []Component, name string) (*Background, []Component) {
	i := slices.IndexFunc(cs, func(c Component) bool { return c.Name() == name })
	if i < 0 {
		return nil, cs
	}
	b := &Background{c: cs[i]}
	out := slices.Clone(cs)
	out[i] = &Await{B: b}
	return b, out
}

// InBackground wraps c to start in the background; place Await{B: it}
// where it must be running.
func InBackground(c Component) *Background { return &Background{c: c} }
