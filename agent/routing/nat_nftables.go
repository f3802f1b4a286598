package routing

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"

	"sigs.k8s.io/knftables"
)

// NATTable is the nftables table (family ip) NAT outgoing owns in
// nftables mode; iks-killall.sh and iks-uninstall.sh delete it.
const NATTable = "iks-nat"

// natChain is NATTable's postrouting base chain.
const natChain = "nat-outgoing"

// ensureNATNFTables replaces NATTable's chain with the NAT outgoing rules
// in one nft transaction.
func ensureNATNFTables(ctx context.Context, cluster, service netip.Prefix) error {
	nft, err := knftables.New(knftables.IPv4Family, NATTable)
	if err != nil {
		return fmt.Errorf("routing: nftables for NAT outgoing: %w; install nftables (nft) or run kube-proxy in iptables mode (--proxy-mode iptables)", err)
	}
	c, s := cluster.String(), service.String()
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("iks: masquerade pod traffic leaving the cluster")})
	chain := &knftables.Chain{Name: natChain, Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority)}
	tx.Add(chain)
	tx.Flush(chain)
	tx.Add(&knftables.Rule{Chain: natChain, Rule: knftables.Concat("ip saddr", c, "ip daddr", c, "return"),
		Comment: knftables.PtrTo("iks: pod to pod keeps its source")})
	tx.Add(&knftables.Rule{Chain: natChain, Rule: knftables.Concat("ip saddr", c, "ip daddr", s, "return"),
		Comment: knftables.PtrTo("iks: pod to service keeps its source")})
	tx.Add(&knftables.Rule{Chain: natChain, Rule: knftables.Concat("ip saddr", c, "masquerade"),
		Comment: knftables.PtrTo("iks: pod leaving the cluster")})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("routing: load nftables table ip %s: %w", NATTable, err)
	}
	return nil
}

// removeNATNFTables deletes NATTable, if nft exists and the table does
// (best effort: a node in iptables mode may have no nft at all).
func removeNATNFTables(ctx context.Context) {
	if _, err := exec.LookPath("nft"); err != nil {
		return
	}
	nft, err := knftables.New(knftables.IPv4Family, NATTable)
	if err != nil {
		return
	}
	if _, err := nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return
	}
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	_ = nft.Run(ctx, tx)
}
