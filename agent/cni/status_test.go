package cni

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/iks-dev/iks/agent/ipam"
)

func TestStatus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	args := &skel.CmdArgs{StdinData: testConf(t, dir, 0, "172.30.0.0/24")}
	if err := Status(args); err != nil {
		t.Fatalf("Status with a fresh data dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ipam.StateFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Status(args)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != errCodeNotAvailable {
		t.Fatalf("Status with corrupt state = %v, want CNI error code %d", err, errCodeNotAvailable)
	}
}

func TestGCReleasesStaleAllocations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	store, err := ipam.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	blocks := []netip.Prefix{netip.MustParsePrefix("172.30.0.0/24")}
	for _, h := range []string{AllocationHandle("live", "eth0"), AllocationHandle("gone", "eth0"), "foreign-handle"} {
		if _, err := store.Allocate(blocks, h); err != nil {
			t.Fatal(err)
		}
	}
	conf := `{"cniVersion":"1.1.0","name":"iks","type":"iks-cni","ipam":{"blocks":["172.30.0.0/24"],"dataDir":"` + dir + `"},
		"cni.dev/valid-attachments":[{"containerID":"live","ifname":"eth0"}]}`
	if err := GC(&skel.CmdArgs{StdinData: []byte(conf)}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	all, err := store.Allocations()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range all {
		got[a.Handle] = true
	}
	if len(got) != 2 || !got[AllocationHandle("live", "eth0")] || !got["foreign-handle"] {
		t.Errorf("after GC allocations are %v, want live/eth0 and foreign-handle", got)
	}
}
