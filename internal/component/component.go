// Package component defines the lifecycle every long-running part of iks
// implements, and a Manager that starts components in order behind
// readiness gates and stops the started ones in reverse.
package component

import "context"

// Component is one long-running part of a server or agent.
type Component interface {
	// Name is a short identifier used in logs ("etcd", "kubelet").
	Name() string
	// Init validates and writes files; it starts no goroutines.
	Init(ctx context.Context) error
	// Start returns once the component runs; ctx bounds start-up only.
	Start(ctx context.Context) error
	// Stop is idempotent and waits for the component's goroutines.
	Stop(ctx context.Context) error
}

// Readier is implemented by components that need time after Start before
// the next one may depend on them. Ready blocks until ready or ctx ends.
type Readier interface {
	Ready(ctx context.Context) error
}

// Healther reports the health of a running component.
type Healther interface {
	Healthy() error
}

// Func adapts plain functions into a Component, for small glue steps.
type Func struct {
	ID      string
	InitFn  func(ctx context.Context) error
	StartFn func(ctx context.Context) error
	StopFn  func(ctx context.Context) error
}

// Name implements Component.
func (f *Func) Name() string { return f.ID }

// Init implements Component.
func (f *Func) Init(ctx context.Context) error {
	if f.InitFn == nil {
		return nil
	}
	return f.InitFn(ctx)
}

// Start implements Component.
func (f *Func) Start(ctx context.Context) error {
	if f.StartFn == nil {
		return nil
	}
	return f.StartFn(ctx)
}

// Stop implements Component.
func (f *Func) Stop(ctx context.Context) error {
	if f.StopFn == nil {
		return nil
	}
	return f.StopFn(ctx)
}
