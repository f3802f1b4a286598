package ipam

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRequestBlockOverSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := ListenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi, err)
	}
	var fail atomic.Bool
	want := []netip.Prefix{netip.MustParsePrefix("172.30.0.0/27")}
	srv := &http.Server{Handler: BlockHandler(func(context.Context) ([]netip.Prefix, error) {
		if fail.Load() {
			return nil, errors.New("the pod range 172.30.0.0/27 has no free block")
		}
		return want, nil
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	got, err := RequestBlock(context.Background(), sock)
	if err != nil || len(got) != 1 || got[0] != want[0] {
		t.Fatalf("RequestBlock = %v, %v; want %v", got, err, want)
	}
	fail.Store(true)
	if _, err := RequestBlock(context.Background(), sock); err == nil || !strings.Contains(err.Error(), "no free block") {
		t.Errorf("RequestBlock error = %v, want the agent's reason", err)
	}
	if _, err := RequestBlock(context.Background(), filepath.Join(t.TempDir(), "none.sock")); err == nil || !strings.Contains(err.Error(), "is the agent running") {
		t.Errorf("RequestBlock without agent = %v", err)
	}
}
