package routing

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// NATOutgoingChain is the nat-table chain, jumped to from POSTROUTING,
// that masquerades pod traffic leaving the cluster.
const NATOutgoingChain = "IKS-NAT-OUTGOING"

const natJumpComment = "iks: masquerade pod traffic leaving the cluster"

// EnsureNATOutgoing makes pod traffic from clusterCIDR to any destination
// outside clusterCIDR and serviceCIDR leave with the node's address, as
// IKS's NAT outgoing does; pod-to-pod and node-to-pod traffic keep their
// source. The chain is replaced atomically (iptables-restore --noflush),
// so calling it again with the same or new CIDRs is safe.
func EnsureNATOutgoing(ctx context.Context, clusterCIDR, serviceCIDR netip.Prefix) error {
	if !clusterCIDR.IsValid() || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("routing: cluster CIDR %q is not an IPv4 prefix; pass the pod range, e.g. 172.30.0.0/16", clusterCIDR)
	}
	if !serviceCIDR.IsValid() || !serviceCIDR.Addr().Is4() {
		return fmt.Errorf("routing: service CIDR %q is not an IPv4 prefix; pass the service range, e.g. 172.21.0.0/16", serviceCIDR)
	}
	c, s := clusterCIDR.Masked().String(), serviceCIDR.Masked().String()
	rules := strings.Join([]string{
		"*nat",
		":" + NATOutgoingChain + " - [0:0]",
		fmt.Sprintf("-A %s -s %s -d %s -m comment --comment \"iks: pod to pod keeps its source\" -j RETURN", NATOutgoingChain, c, c),
		fmt.Sprintf("-A %s -s %s -d %s -m comment --comment \"iks: pod to service keeps its source\" -j RETURN", NATOutgoingChain, c, s),
		fmt.Sprintf("-A %s -s %s -m comment --comment \"iks: pod leaving the cluster\" -j MASQUERADE", NATOutgoingChain, c),
		"COMMIT",
		"",
	}, "\n")
	if out, err := runIPTables(ctx, "iptables-restore", []byte(rules), "--noflush", "--wait"); err != nil {
		return fmt.Errorf("routing: load nat chain %s: %w: %s", NATOutgoingChain, err, out)
	}
	jump := []string{"POSTROUTING", "-m", "comment", "--comment", natJumpComment, "-j", NATOutgoingChain}
	check := append([]string{"--wait", "-t", "nat", "-C"}, jump...)
	if _, err := runIPTables(ctx, "iptables", nil, check...); err == nil {
		return nil
	}
	add := append([]string{"--wait", "-t", "nat", "-A"}, jump...)
	if out, err := runIPTables(ctx, "iptables", nil, add...); err != nil {
		return fmt.Errorf("routing: add the jump to %s in nat POSTROUTING: %w: %s", NATOutgoingChain, err, out)
	}
	return nil
}

func runIPTables(ctx context.Context, name string, stdin []byte, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH; install iptables (nft or legacy backend): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
