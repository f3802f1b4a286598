package ipam

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "ipam"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustAllocate(t *testing.T, s *Store, blocks []netip.Prefix, handle string) netip.Addr {
	t.Helper()
	ip, err := s.Allocate(blocks, handle)
	if err != nil {
		t.Fatalf("Allocate(%v, %q): %v", blocks, handle, err)
	}
	return ip
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ipam")
	if _, err := Open(dir); err != nil {
		t.Fatalf("Open: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	if _, err := Open("relative/dir"); err == nil {
		t.Error("Open of a relative directory succeeded, want error")
	}
}

func TestAllocateIdempotentAndReserved(t *testing.T) {
	s := openTemp(t)
	blocks := mustPrefixes(t, "172.30.5.0/30")
	a := mustAllocate(t, s, blocks, "c1/eth0")
	b := mustAllocate(t, s, blocks, "c2/eth0")
	if again := mustAllocate(t, s, blocks, "c1/eth0"); again != a {
		t.Errorf("second Allocate for c1 = %s, want %s", again, a)
	}
	got := map[netip.Addr]bool{a: true, b: true}
	want := map[netip.Addr]bool{netip.MustParseAddr("172.30.5.1"): true, netip.MustParseAddr("172.30.5.2"): true}
	if len(got) != 2 || !got[netip.MustParseAddr("172.30.5.1")] || !got[netip.MustParseAddr("172.30.5.2")] {
		t.Errorf("allocated %v, want %v (first and last address reserved)", got, want)
	}
	_, err := s.Allocate(blocks, "c3/eth0")
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("third Allocate error = %v, want ErrExhausted", err)
	}
	for _, want := range []string{"172.30.5.0/30", "needs another block"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("exhaustion error %q does not mention %q", err, want)
		}
	}
	if _, ok, _ := s.Lookup("c3/eth0"); ok {
		t.Error("failed Allocate left an allocation behind")
	}
}

func TestReleaseAndReuse(t *testing.T) {
	s := openTemp(t)
	blocks := mustPrefixes(t, "10.0.0.0/29") // usable .1 - .6
	a := mustAllocate(t, s, blocks, "a")
	mustAllocate(t, s, blocks, "b")
	if err := s.Release("a"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := s.Release("a"); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if err := s.Release("never-allocated"); err != nil {
		t.Fatalf("Release of unknown handle: %v", err)
	}
	if _, ok, err := s.Lookup("a"); err != nil || ok {
		t.Fatalf("Lookup after Release = (%v, %v), want not found", ok, err)
	}
	// The search continues after the last handed-out address, so the
	// released one is not reused at once ...
	c := mustAllocate(t, s, blocks, "c")
	if c == a {
		t.Errorf("just-released %s was reused immediately", a)
	}
	// ... but once the block wraps around it is.
	var all []netip.Addr
	for _, h := range []string{"d", "e", "f", "g"} {
		all = append(all, mustAllocate(t, s, blocks, h))
	}
	if all[len(all)-1] != a {
		t.Errorf("last free address = %s, want the released %s", all[len(all)-1], a)
	}
	if _, err := s.Allocate(blocks, "h"); !errors.Is(err, ErrExhausted) {
		t.Errorf("Allocate on full block = %v, want ErrExhausted", err)
	}
}

func TestMultipleBlocksAndUsage(t *testing.T) {
	s := openTemp(t)
	blocks := mustPrefixes(t, "172.30.0.0/30", "172.30.1.0/29")
	for _, h := range []string{"a", "b", "c"} {
		mustAllocate(t, s, blocks, h)
	}
	ip, _, err := s.Lookup("c")
	if err != nil {
		t.Fatal(err)
	}
	if !blocks[1].Contains(ip) {
		t.Errorf("third allocation %s did not spill into %s", ip, blocks[1])
	}
	usage, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	want := []BlockUsage{
		{Block: blocks[0], Used: 2, Capacity: 2},
		{Block: blocks[1], Used: 1, Capacity: 6},
	}
	if len(usage) != len(want) || usage[0] != want[0] || usage[1] != want[1] {
		t.Errorf("Usage = %+v, want %+v", usage, want)
	}
}

func TestRetiredBlockStillReleasable(t *testing.T) {
	s := openTemp(t)
	old := mustPrefixes(t, "172.30.0.0/24")
	cur := mustPrefixes(t, "172.30.7.0/26")
	oldIP := mustAllocate(t, s, old, "old")
	newIP := mustAllocate(t, s, cur, "new")
	if !cur[0].Contains(newIP) {
		t.Fatalf("new allocation %s not in %s", newIP, cur[0])
	}
	if again := mustAllocate(t, s, cur, "old"); again != oldIP {
		t.Errorf("idempotent Allocate with other blocks = %s, want the existing %s", again, oldIP)
	}
	usage, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 2 || usage[0].Block != old[0] || !usage[0].Retired || usage[0].Used != 1 || usage[1].Retired {
		t.Errorf("Usage = %+v, want %s retired with 1 used and %s current", usage, old[0], cur[0])
	}
	if err := s.Release("old"); err != nil {
		t.Fatalf("Release of allocation in retired block: %v", err)
	}
	if usage, _ := s.Usage(); len(usage) != 1 || usage[0].Block != cur[0] {
		t.Errorf("Usage after release = %+v, want only %s", usage, cur[0])
	}
}

func TestStatePersistsAcrossStores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	blocks := mustPrefixes(t, "192.168.7.0/24")
	ip := mustAllocate(t, s1, blocks, "x")
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s2.Lookup("x")
	if err != nil || !ok || got != ip {
		t.Fatalf("Lookup in second store = (%s, %v, %v), want %s", got, ok, err, ip)
	}
	all, err := s2.Allocations()
	if err != nil || len(all) != 1 || all[0].Handle != "x" || all[0].Block != blocks[0] {
		t.Errorf("Allocations = %+v, %v", all, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, StateFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file stat = %v, %v; want mode 600", fi, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestCorruptStateFileIsAnError(t *testing.T) {
	cases := map[string]string{
		"garbage":   "{not json",
		"empty":     "",
		"version":   `{"version": 9, "allocations": {}}`,
		"duplicate": `{"version":1,"allocations":{"a":{"ip":"10.0.0.1","block":"10.0.0.0/24"},"b":{"ip":"10.0.0.1","block":"10.0.0.0/24"}}}`,
		"outside":   `{"version":1,"allocations":{"a":{"ip":"10.0.1.1","block":"10.0.0.0/24"}}}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("Open error = %v, want a corrupt-file error naming %s", err, path)
			}
			s := &Store{dir: dir}
			if _, err := s.Allocate(mustPrefixes(t, "10.0.0.0/24"), "z"); err == nil {
				t.Error("Allocate on corrupt state succeeded")
			}
			if err := s.Release("a"); err == nil {
				t.Error("Release on corrupt state succeeded")
			}
			after, _ := os.ReadFile(path)
			if string(after) != content {
				t.Errorf("corrupt state file was rewritten to %q", after)
			}
		})
	}
}

func TestValidateBlocks(t *testing.T) {
	bad := map[string][]netip.Prefix{
		"none":      nil,
		"ipv6":      mustPrefixes(t, "fd00::/64"),
		"too small": mustPrefixes(t, "10.0.0.0/31"),
		"host bits": mustPrefixes(t, "10.0.0.1/24"),
		"overlap":   mustPrefixes(t, "10.0.0.0/24", "10.0.0.64/26"),
		"invalid":   {netip.Prefix{}},
	}
	for name, blocks := range bad {
		if err := ValidateBlocks(blocks); err == nil {
			t.Errorf("%s: ValidateBlocks(%v) = nil, want error", name, blocks)
		}
	}
	if err := ValidateBlocks(mustPrefixes(t, "172.30.0.0/24", "172.30.1.0/26", "172.30.1.64/30")); err != nil {
		t.Errorf("ValidateBlocks of good blocks: %v", err)
	}
	if _, err := openTemp(t).Allocate(mustPrefixes(t, "10.0.0.0/24"), ""); err == nil {
		t.Error("Allocate with empty handle succeeded")
	}
}

func TestCandidatesWrapAround(t *testing.T) {
	blocks := mustPrefixes(t, "10.0.0.0/30", "10.0.1.0/30")
	var got []string
	for a := range candidates(blocks, netip.MustParseAddr("10.0.1.1")) {
		got = append(got, a.String())
	}
	want := "10.0.1.2 10.0.0.1 10.0.0.2 10.0.1.1"
	if strings.Join(got, " ") != want {
		t.Errorf("candidates = %v, want %s", got, want)
	}
}

func TestBlockSetOwnedByTheAgent(t *testing.T) {
	s := openTemp(t)
	if _, err := s.AllocateFromSet("a"); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "no address block") {
		t.Fatalf("AllocateFromSet without blocks = %v, want ErrExhausted naming the missing block", err)
	}
	b1 := mustPrefixes(t, "172.30.0.32/30")
	if err := s.SetBlocks(b1); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Free(); err != nil || n != 2 {
		t.Fatalf("Free = %d, %v; want 2", n, err)
	}
	a := mustFromSet(t, s, "a")
	mustFromSet(t, s, "b")
	if _, err := s.AllocateFromSet("c"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("third allocation = %v, want ErrExhausted", err)
	}
	if again := mustFromSet(t, s, "a"); again != a {
		t.Errorf("idempotent AllocateFromSet = %s, want %s", again, a)
	}
	// The agent claims another block; the lower one sorts first.
	if err := s.SetBlocks(mustPrefixes(t, "172.30.0.32/30", "172.30.0.0/30")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blocks(); len(got) != 2 || got[0].String() != "172.30.0.0/30" {
		t.Errorf("Blocks = %v, want sorted by address", got)
	}
	c := mustFromSet(t, s, "c")
	if !netip.MustParsePrefix("172.30.0.0/30").Contains(c) {
		t.Errorf("allocation after the new block = %s, want one from 172.30.0.0/30", c)
	}
	if n, _ := s.Free(); n != 1 {
		t.Errorf("Free = %d, want 1", n)
	}
	// Dropping a block keeps its allocations, retired.
	if err := s.SetBlocks(mustPrefixes(t, "172.30.0.0/30")); err != nil {
		t.Fatal(err)
	}
	usage, _ := s.Usage()
	if len(usage) != 2 || !usage[1].Retired || usage[1].Used != 2 {
		t.Errorf("Usage = %+v, want 172.30.0.32/30 retired with 2 used", usage)
	}
	if err := s.SetBlocks(nil); err != nil {
		t.Errorf("SetBlocks(nil): %v", err)
	}
	if err := s.SetBlocks(mustPrefixes(t, "10.0.0.0/24", "10.0.0.0/26")); err == nil {
		t.Error("overlapping blocks accepted")
	}
}

func mustFromSet(t *testing.T, s *Store, handle string) netip.Addr {
	t.Helper()
	ip, err := s.AllocateFromSet(handle)
	if err != nil {
		t.Fatalf("AllocateFromSet(%q): %v", handle, err)
	}
	return ip
}
