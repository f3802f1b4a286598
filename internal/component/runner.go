package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Runner runs one blocking function (an embedded upstream component's Run)
// in a goroutine, and lets Start/Ready/Stop observe and end it.
type Runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go starts fn with a context that Stop cancels. ctx supplies values only;
// its cancellation does not stop fn.
func (r *Runner) Go(ctx context.Context, fn func(ctx context.Context) error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.mu.Lock()
	r.cancel = cancel
	r.done = make(chan struct{})
	done := r.done
	r.mu.Unlock()
	go func() {
		defer close(done)
		err := fn(runCtx)
		if err == nil && runCtx.Err() == nil {
			err = errors.New("exited unexpectedly")
		}
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
}

// Exited returns a non-nil error once fn has returned while it was meant
// to run; nil while it runs.
func (r *Runner) Exited() error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return errors.New("not started")
	}
	select {
	case <-done:
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.err == nil {
			return errors.New("stopped")
		}
		return r.err
	default:
		return nil
	}
}

// Stop cancels fn's context and waits for it to return or for ctx to end.
// Upstream components do not always return promptly; ctx bounds the wait.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("still running after stop was requested: %w", ctx.Err())
	}
}
