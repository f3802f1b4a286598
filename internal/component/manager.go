package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Manager runs an ordered list of components.
type Manager struct {
	log        *slog.Logger
	components []Component

	mu      sync.Mutex
	started []Component
}

// NewManager returns a manager for the given components, in start order.
func NewManager(log *slog.Logger, components ...Component) *Manager {
	return &Manager{log: log, components: components}
}

// Add appends components to the start order.
func (m *Manager) Add(cs ...Component) { m.components = append(m.components, cs...) }

// Init initialises every component in order, before any is started.
func (m *Manager) Init(ctx context.Context) error {
	for _, c := range m.components {
		if err := c.Init(ctx); err != nil {
			return wrap("init", c, err)
		}
	}
	return nil
}

// Start starts each component in order and, when it implements Readier,
// waits for it to be ready before starting the next. On failure, the
// failed component and those already started are stopped in reverse order.
func (m *Manager) Start(ctx context.Context) error {
	for _, c := range m.components {
		t0 := time.Now()
		// A component is stopped even when its Start fails: it may have
		// started goroutines, sockets or children before failing, and
		// Stop is idempotent.
		m.mu.Lock()
		m.started = append(m.started, c)
		m.mu.Unlock()
		if err := c.Start(ctx); err != nil {
			err = wrap("start", c, err)
			return errors.Join(err, m.Stop(context.WithoutCancel(ctx)))
		}
		if r, ok := c.(Readier); ok {
			if err := r.Ready(ctx); err != nil {
				err = fmt.Errorf("%s did not become ready: %w", c.Name(), err)
				return errors.Join(err, m.Stop(context.WithoutCancel(ctx)))
			}
		}
		if _, bg := c.(*Background); bg {
			m.log.Info(fmt.Sprintf("%s starting", c.Name()), "component", c.Name())
			continue
		}
		m.log.Info(fmt.Sprintf("%s ready", c.Name()), "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond).String())
	}
	return nil
}

// Stop stops the started components (a failed one included) in reverse order and joins their errors.
// It is safe to call more than once.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	started := m.started
	m.started = nil
	m.mu.Unlock()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		c := started[i]
		t0 := time.Now()
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, wrap("stop", c, err))
			continue
		}
		m.log.Debug("stopped", "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond).String())
	}
	return errors.Join(errs...)
}

// Healthy returns the joined health errors of started components.
func (m *Manager) Healthy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, c := range m.started {
		if h, ok := c.(Healther); ok {
			if err := h.Healthy(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Supervise blocks until ctx ends or a started component reports
// unhealthy (checked every interval), then stops every started component
// in reverse order within timeout. It returns the failure, if any, joined
// with the stop errors.
func (m *Manager) Supervise(ctx context.Context, interval, timeout time.Duration) error {
	var runErr error
	t := time.NewTicker(interval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if err := m.Healthy(); err != nil {
				runErr = fmt.Errorf("a component failed: %w", err)
				m.log.Error("stopping after a component failed", "err", err)
				break loop
			}
		}
	}
	m.log.Info("stopping")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := m.Stop(stopCtx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	m.log.Info("stopped")
	return runErr
}

// wrap prefixes err with the step and the component's name ("start lb:
// ..."), once: an error that already names the component ("lb: ...")
// gets only the step.
func wrap(step string, c Component, err error) error {
	if strings.HasPrefix(err.Error(), c.Name()+": ") {
		return fmt.Errorf("%s %w", step, err)
	}
	return fmt.Errorf("%s %s: %w", step, c.Name(), err)
}
