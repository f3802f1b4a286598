package routing

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iks-dev/iks/tests/testutil"
)

var (
	testCluster = netip.MustParsePrefix("172.30.0.0/16")
	testService = netip.MustParsePrefix("172.21.0.0/16")
)

func TestEnsureNATOutgoingIPTables(t *testing.T) {
	testutil.RequireNetns(t)
	testutil.RequireTools(t, "iptables", "iptables", "iptables-restore", "iptables-save")
	ns := testutil.NewNetns(t, testutil.NetnsName("nat"))
	ctx := context.Background()
	for i := 0; i < 2; i++ { // the second call must change nothing
		if err := ns.Do(func() error { return EnsureNATOutgoing(ctx, NATIPTables, testCluster, testService) }); err != nil {
			t.Fatalf("EnsureNATOutgoing (call %d): %v", i+1, err)
		}
	}
	rules := natRules(t, ns.Name)
	want := []string{
		"-A POSTROUTING -m comment --comment \"" + natJumpComment + "\" -j IKS-NAT-OUTGOING",
		"-A IKS-NAT-OUTGOING -s 172.30.0.0/16 -d 172.30.0.0/16 -m comment --comment \"iks: pod to pod keeps its source\" -j RETURN",
		"-A IKS-NAT-OUTGOING -s 172.30.0.0/16 -d 172.21.0.0/16 -m comment --comment \"iks: pod to service keeps its source\" -j RETURN",
		"-A IKS-NAT-OUTGOING -s 172.30.0.0/16 -m comment --comment \"iks: pod leaving the cluster\" -j MASQUERADE",
	}
	if strings.Join(rules, "\n") != strings.Join(want, "\n") {
		t.Errorf("nat rules after two calls:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}

	// A new cluster CIDR replaces the chain's rules, keeping one jump.
	if err := ns.Do(func() error {
		return EnsureNATOutgoing(ctx, NATIPTables, netip.MustParsePrefix("172.40.0.0/16"), testService)
	}); err != nil {
		t.Fatalf("EnsureNATOutgoing with a new CIDR: %v", err)
	}
	rules = natRules(t, ns.Name)
	if len(rules) != 4 || strings.Contains(strings.Join(rules, "\n"), "172.30.0.0/16") {
		t.Errorf("nat rules after changing the cluster CIDR:\n%s", strings.Join(rules, "\n"))
	}

	for _, bad := range []struct {
		backend NATBackend
		cluster netip.Prefix
		want    string
	}{{NATIPTables, netip.Prefix{}, "cluster CIDR"}, {"ipvs", testCluster, `backend "ipvs"`}} {
		if err := EnsureNATOutgoing(ctx, bad.backend, bad.cluster, testService); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("EnsureNATOutgoing(%q, %v): got %v, want an error naming %s", bad.backend, bad.cluster, err, bad.want)
		}
	}
}

// In nftables mode NAT outgoing needs nft only: PATH holds nothing else
// (no iptables), and switching from iptables mode removes the old chain.
func TestEnsureNATOutgoingNFTablesWithoutIPTables(t *testing.T) {
	testutil.RequireNetns(t)
	testutil.RequireTools(t, "nftables", "nft")
	testutil.RequireTools(t, "iptables", "iptables", "iptables-restore", "iptables-save")
	ns := testutil.NewNetns(t, testutil.NetnsName("nft"))
	ctx := context.Background()

	// The node ran in iptables mode before.
	if err := ns.Do(func() error { return EnsureNATOutgoing(ctx, NATIPTables, testCluster, testService) }); err != nil {
		t.Fatal(err)
	}
	nftPath, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal(err)
	}
	ipPath, _ := exec.LookPath("ip")
	onlyNFT := t.TempDir()
	if err := os.Symlink(nftPath, filepath.Join(onlyNFT, "nft")); err != nil {
		t.Fatal(err)
	}
	pathWithIPTables := os.Getenv("PATH")
	t.Setenv("PATH", onlyNFT)
	for i := 0; i < 2; i++ {
		if err := ns.Do(func() error { return EnsureNATOutgoing(ctx, NATNFTables, testCluster, testService) }); err != nil {
			t.Fatalf("EnsureNATOutgoing nftables, nft only in PATH (call %d): %v", i+1, err)
		}
	}
	table := nftTable(t, ipPath, nftPath, ns.Name)
	for _, want := range []string{
		"type nat hook postrouting priority srcnat",
		`ip saddr 172.30.0.0/16 ip daddr 172.30.0.0/16 return comment "iks: pod to pod keeps its source"`,
		`ip saddr 172.30.0.0/16 ip daddr 172.21.0.0/16 return comment "iks: pod to service keeps its source"`,
		`ip saddr 172.30.0.0/16 masquerade comment "iks: pod leaving the cluster"`,
	} {
		if strings.Count(table, want) != 1 {
			t.Errorf("table ip %s after two calls lacks (or repeats) %q:\n%s", NATTable, want, table)
		}
	}
	if err := ns.Do(func() error {
		return EnsureNATOutgoing(ctx, NATNFTables, netip.MustParsePrefix("172.40.0.0/16"), testService)
	}); err != nil {
		t.Fatal(err)
	}
	if table := nftTable(t, ipPath, nftPath, ns.Name); strings.Contains(table, "172.30.0.0/16") || strings.Count(table, "172.40.0.0/16") != 4 {
		t.Errorf("table ip %s after changing the cluster CIDR:\n%s", NATTable, table)
	}

	// Back with iptables in PATH: nftables mode removes the iptables
	// chain, and iptables mode the nftables table.
	t.Setenv("PATH", pathWithIPTables)
	if err := ns.Do(func() error { return EnsureNATOutgoing(ctx, NATNFTables, testCluster, testService) }); err != nil {
		t.Fatal(err)
	}
	if rules := natRules(t, ns.Name); len(rules) != 0 {
		t.Errorf("iptables nat rules left in nftables mode:\n%s", strings.Join(rules, "\n"))
	}
	if err := ns.Do(func() error { return EnsureNATOutgoing(ctx, NATIPTables, testCluster, testService) }); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns.Name, "nft", "list", "table", "ip", NATTable).CombinedOutput(); err == nil {
		t.Errorf("table ip %s left in iptables mode:\n%s", NATTable, out)
	}
}

// natRules returns the nat table's -A lines in namespace ns.
func natRules(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(run(t, "ip", "netns", "exec", ns, "iptables-save", "-t", "nat"), "\n") {
		if strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out
}

// nftTable lists NATTable in namespace ns (absolute tool paths: PATH may
// hold nft only).
func nftTable(t *testing.T, ip, nft, ns string) string {
	t.Helper()
	return run(t, ip, "netns", "exec", ns, nft, "list", "table", "ip", NATTable)
}
