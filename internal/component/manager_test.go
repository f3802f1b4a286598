package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"
)

type rec struct {
	name     string
	log      *[]string
	startErr error
	readyErr error
}

func (r *rec) Name() string               { return r.name }
func (r *rec) Init(context.Context) error { *r.log = append(*r.log, "init "+r.name); return nil }
func (r *rec) Start(context.Context) error {
	*r.log = append(*r.log, "start "+r.name)
	return r.startErr
}
func (r *rec) Stop(context.Context) error { *r.log = append(*r.log, "stop "+r.name); return nil }
func (r *rec) Ready(context.Context) error {
	*r.log = append(*r.log, "ready "+r.name)
	return r.readyErr
}

func TestManagerOrder(t *testing.T) {
	var log []string
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)),
		&rec{name: "a", log: &log}, &rec{name: "b", log: &log})
	ctx := context.Background()
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil { // idempotent: nothing started any more
		t.Fatal(err)
	}
	want := []string{"init a", "init b", "start a", "ready a", "start b", "ready b", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

func TestManagerStopsStartedOnFailure(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)),
		&rec{name: "a", log: &log}, &rec{name: "b", log: &log, readyErr: boom}, &rec{name: "c", log: &log})
	err := m.Start(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	want := []string{"start a", "ready a", "start b", "ready b", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

type sick struct {
	rec
	err error
}

func (s *sick) Healthy() error { return s.err }

func TestSuperviseStopsOnFailureAndOnCancel(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), &sick{rec: rec{name: "a", log: &log}, err: boom})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Supervise(context.Background(), time.Millisecond, time.Second); !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	if log[len(log)-1] != "stop a" {
		t.Fatalf("not stopped: %v", log)
	}
	log = nil
	m = NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), &rec{name: "b", log: &log})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Supervise(ctx, time.Hour, time.Second); err != nil {
		t.Fatal(err)
	}
	if log[len(log)-1] != "stop b" {
		t.Fatalf("not stopped: %v", log)
	}
}

// halfStart starts a goroutine, then fails: only Stop ends the goroutine.
type halfStart struct {
	rec
	quit, done chan struct{}
}

func (h *halfStart) Start(ctx context.Context) error {
	quit, done := make(chan struct{}), make(chan struct{})
	h.quit, h.done = quit, done
	go func() { <-quit; close(done) }()
	_ = h.rec.Start(ctx)
	return errors.New("second step failed")
}

func (h *halfStart) Stop(ctx context.Context) error {
	if h.quit != nil {
		close(h.quit)
		h.quit = nil
		<-h.done
	}
	return h.rec.Stop(ctx)
}

// A component whose Start fails half-way is stopped too (before those
// started earlier), so what it started before failing does not leak.
func TestManagerStopsTheComponentWhoseStartFailed(t *testing.T) {
	var log []string
	half := &halfStart{rec: rec{name: "b", log: &log}}
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)),
		&rec{name: "a", log: &log}, half, &rec{name: "c", log: &log})
	err := m.Start(context.Background())
	if err == nil || err.Error() != "start b: second step failed" {
		t.Fatalf("got %v, want start b: second step failed", err)
	}
	select {
	case <-half.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the goroutine b started before failing is still running")
	}
	want := []string{"start a", "ready a", "start b", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
	if err := m.Stop(context.Background()); err != nil || len(log) != len(want) {
		t.Fatalf("a second Stop: err %v, log %v (nothing left to stop)", err, log)
	}
}

// The manager names the component once: "start lb: ...", not "start lb:
// lb: ...", and the cause stays reachable with errors.Is.
func TestManagerNamesTheComponentOnce(t *testing.T) {
	var log []string
	cause := errors.New("service informer did not sync")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("lb: %w", cause), "start lb: service informer did not sync"},
		{cause, "start lb: service informer did not sync"},
		{fmt.Errorf("lbx: %w", cause), "start lb: lbx: service informer did not sync"},
	} {
		m := NewManager(slog.New(slog.DiscardHandler), &rec{name: "lb", log: &log, startErr: tc.err})
		err := m.Start(context.Background())
		if err == nil || err.Error() != tc.want || !errors.Is(err, cause) {
			t.Errorf("start error %v: got %v, want %q wrapping the cause", tc.err, err, tc.want)
		}
	}
}
