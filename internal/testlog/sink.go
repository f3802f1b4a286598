// Package testlog is a slog handler for tests that wait on log lines
// instead of sleeping: each record's message goes to a channel.
package testlog

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// Sink collects log messages; a full buffer drops messages rather than
// blocking the code under test.
type Sink struct{ msgs chan string }

// New returns a sink buffering up to 100 messages.
func New() *Sink { return &Sink{msgs: make(chan string, 100)} }

// Logger returns a logger writing to the sink.
func (s *Sink) Logger() *slog.Logger { return slog.New(s) }

// Enabled implements slog.Handler.
func (s *Sink) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (s *Sink) Handle(_ context.Context, r slog.Record) error {
	select {
	case s.msgs <- r.Message:
	default:
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (s *Sink) WithAttrs([]slog.Attr) slog.Handler { return s }

// WithGroup implements slog.Handler.
func (s *Sink) WithGroup(string) slog.Handler { return s }

// Wait returns the first message containing substr, failing the test
// when ctx ends first.
func (s *Sink) Wait(t testing.TB, ctx context.Context, substr string) string {
	t.Helper()
	for {
		select {
		case m := <-s.msgs:
			if strings.Contains(m, substr) {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("no log line containing %q", substr)
			return ""
		}
	}
}
