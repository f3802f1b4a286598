package profiling

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestStartServesHeapProfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(EnvAddr, addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Start(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("GET heap: %s: %.200s", resp.Status, body)
	}
}

func TestStartOffAndBadAddress(t *testing.T) {
	t.Setenv(EnvAddr, "")
	if err := Start(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("unset: %v", err)
	}
	t.Setenv(EnvAddr, "not-an-address")
	err := Start(context.Background(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `IKS_PPROF="not-an-address"`) {
		t.Fatalf("bad address: got %v, want an error naming it", err)
	}
}
