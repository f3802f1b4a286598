package routing

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/tests/testutil"
)

func TestEnsureNATOutgoing(t *testing.T) {
	testutil.RequireNetns(t)
	testutil.RequireTools(t, "iptables", "iptables-restore", "iptables-save")
	ns := testutil.NewNetns(t, testutil.NetnsName("nat")).Name
	ctx := context.Background()
	cluster, service := netip.MustParsePrefix("172.30.0.0/16"), netip.MustParsePrefix("172.21.0.0/16")
	for i := 0; i < 2; i++ { // the second call must change nothing
		if err := testutil.InNetns(ns, func() error { return EnsureNATOutgoing(ctx, cluster, service) }); err != nil {
			t.Fatalf("EnsureNATOutgoing (call %d): %v", i+1, err)
		}
	}
	rules := natRules(t, ns)
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
	if err := testutil.InNetns(ns, func() error { return EnsureNATOutgoing(ctx, netip.MustParsePrefix("172.40.0.0/16"), service) }); err != nil {
		t.Fatalf("EnsureNATOutgoing with a new CIDR: %v", err)
	}
	rules = natRules(t, ns)
	if len(rules) != 4 || strings.Contains(strings.Join(rules, "\n"), "172.30.0.0/16") {
		t.Errorf("nat rules after changing the cluster CIDR:\n%s", strings.Join(rules, "\n"))
	}

	if err := EnsureNATOutgoing(ctx, netip.Prefix{}, service); err == nil || !strings.Contains(err.Error(), "cluster CIDR") {
		t.Errorf("invalid cluster CIDR: got %v, want an error naming it", err)
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
