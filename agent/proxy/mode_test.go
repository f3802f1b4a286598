package proxy

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/config"

	"github.com/iks-dev/iks/tests/testutil"
)

func TestResolveModeUnknown(t *testing.T) {
	_, _, err := ResolveMode(context.Background(), "ipvs")
	if err == nil || !strings.Contains(err.Error(), `"ipvs"`) || !strings.Contains(err.Error(), "auto, nftables or iptables") {
		t.Fatalf("got %v", err)
	}
}

// Auto picks nftables exactly when kube-proxy's nftables check passes; the
// check leaves no table behind (nft --check).
func TestResolveModeAuto(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "nftables", "nft")
	ctx := context.Background()
	mode, reason, err := ResolveMode(ctx, config.ProxyModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	nftErr := NFTablesSupported(ctx)
	if want := config.ProxyModeIPTables; nftErr == nil {
		want = config.ProxyModeNFTables
		if mode != want {
			t.Fatalf("auto chose %s (%s) although nftables is supported", mode, reason)
		}
	} else if mode != want || !strings.Contains(reason, "nftables unavailable") {
		t.Fatalf("auto chose %s (%s) although nftables is not supported: %v", mode, reason, nftErr)
	}
	if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err == nil && strings.Contains(string(out), probeTable) {
		t.Errorf("the mode check left table %s behind", probeTable)
	}
	if m, _, err := ResolveMode(ctx, config.ProxyModeIPTables); err != nil || m != config.ProxyModeIPTables {
		t.Errorf("explicit iptables: %s %v", m, err)
	}
	if m, _, err := ResolveMode(ctx, config.ProxyModeNFTables); (err == nil) != (nftErr == nil) || err == nil && m != config.ProxyModeNFTables {
		t.Errorf("explicit nftables: %s %v (support: %v)", m, err, nftErr)
	} else if err != nil && !strings.Contains(err.Error(), "--proxy-mode iptables") {
		t.Errorf("explicit nftables refusal names no fix: %v", err)
	}
}
