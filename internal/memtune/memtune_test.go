package memtune

import (
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

func TestApplyDefaultAndEnvironmentWins(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	Apply(slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, DefaultGCPercent)
	}
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200) // what the runtime did at start with GOGC=200
	Apply(slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 200 {
		t.Fatalf("GOGC=200: GC percent %d, want it left at 200", got)
	}
}
