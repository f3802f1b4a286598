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
// that masquerades pod traffic leaving the cluster in iptables mode.
const NATOutgoingChain = "IKS-NAT-OUTGOING"

const natJumpComment = "iks: masquerade pod traffic leaving the cluster"

// ensureNATIPTables replaces the chain atomically (iptables-restore
// --noflush) and adds the POSTROUTING jump once.
func ensureNATIPTables(ctx context.Context, cluster, service netip.Prefix) error {
	c, s := cluster.String(), service.String()
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

// removeNATIPTables removes the jump and the chain, if iptables exists and
// they do (best effort: a node in nftables mode may have no iptables).
func removeNATIPTables(ctx context.Context) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	if _, err := runIPTables(ctx, "iptables", nil, "--wait", "-t", "nat", "-S", NATOutgoingChain); err != nil {
		return // no chain
	}
	jump := []string{"POSTROUTING", "-m", "comment", "--comment", natJumpComment, "-j", NATOutgoingChain}
	for {
		if _, err := runIPTables(ctx, "iptables", nil, append([]string{"--wait", "-t", "nat", "-D"}, jump...)...); err != nil {
			break
		}
	}
	_, _ = runIPTables(ctx, "iptables", nil, "--wait", "-t", "nat", "-F", NATOutgoingChain)
	_, _ = runIPTables(ctx, "iptables", nil, "--wait", "-t", "nat", "-X", NATOutgoingChain)
}

func runIPTables(ctx context.Context, name string, stdin []byte, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH; install iptables (nft or legacy backend), or run kube-proxy in nftables mode (--proxy-mode nftables): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
