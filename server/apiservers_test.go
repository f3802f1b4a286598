package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A server missing from the kubernetes Service's endpoints for a minute
// is warned about once, with its /readyz; listed again, the warning resets.
func TestAPIServersWarnsWhenSelfMissing(t *testing.T) {
	var sink bytes.Buffer
	a := &apiServers{self: "10.0.0.3", log: slog.New(slog.NewTextHandler(&sink, nil))}
	readyz := func(context.Context) ([]byte, error) { return []byte("[+]ping ok\nreadyz check passed"), nil }
	t0 := time.Unix(1000, 0)
	others := []string{"10.0.0.1", "10.0.0.2"}
	a.checkSelf(context.Background(), readyz, others, t0)
	a.checkSelf(context.Background(), readyz, others, t0.Add(30*time.Second))
	if n := strings.Count(sink.String(), "missing from the kubernetes Service's endpoints"); n != 0 {
		t.Fatalf("warned after 30 s: %s", sink.String())
	}
	a.checkSelf(context.Background(), readyz, others, t0.Add(61*time.Second))
	a.checkSelf(context.Background(), readyz, others, t0.Add(71*time.Second))
	if n := strings.Count(sink.String(), "missing from the kubernetes Service's endpoints"); n != 1 || !strings.Contains(sink.String(), "readyz check passed") {
		t.Fatalf("want one warning with /readyz after a minute, got %d:\n%s", n, sink.String())
	}
	a.checkSelf(context.Background(), readyz, append(others, "10.0.0.3"), t0.Add(80*time.Second))
	if !a.missingSince.IsZero() || a.warned {
		t.Error("listed again: the missing state was not reset")
	}
}
