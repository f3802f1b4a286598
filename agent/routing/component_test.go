package routing

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iks-dev/iks/internal/kubeclients"
)

// writeKubeconfig points a kubeconfig at url (plain HTTP, no credentials).
func writeKubeconfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	conf := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + url + `"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A routing Start that fails half-way (its Node informer never syncs: the
// apiserver answers 503) stops what it started: once the agent's shared
// informers stop, the goroutine count returns to where it was.
func TestRoutingStartFailureLeavesNothingRunning(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	kubeconfig := writeKubeconfig(t, srv.URL)

	before := runtime.NumGoroutine()
	clients := kubeclients.New(kubeconfig)
	p := NewComponent(ComponentConfig{Router: Config{NodeName: "n1", NodeIP: netip.MustParseAddr("127.0.0.1")},
		Clients: clients}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := p.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "list Nodes") || !strings.Contains(err.Error(), kubeconfig) {
		t.Fatalf("Start against an apiserver that never answers: got %v, want an error naming the Node list and the kubeconfig", err)
	}
	if requests.Load() == 0 {
		t.Fatal("the informer never asked the apiserver: the test did not fail Start where it meant to")
	}
	if n := len(p.regs.Synced()); n != 0 {
		t.Errorf("%d event handlers still registered on the shared informers after the failed Start", n)
	}
	// The agent's shared informers stop with the agent; what the
	// component started itself must be gone already.
	clients.Shutdown()
	srv.CloseClientConnections()

	// Nothing may keep running: poll until the goroutines are gone.
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after the failed Start, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	// Stop after the failed Start (as the manager does) is harmless.
	if err := p.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}
