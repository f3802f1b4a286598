package vpnroute

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"
)

// Table is the nftables table (family ip) of the VPN routing; iks-killall.sh
// may delete it.
const Table = "iks-vpn"

const (
	chainPost    = "vpn-postrouting"
	chainPre     = "vpn-prerouting"
	chainForward = "vpn-forward"
	setRemote    = "vpn-remote"
)

// rules builds the table's transaction: on every node, pod traffic to a
// remote subnet keeps its source (a null SNAT at srcnat-10 binds the
// connection before NAT outgoing's masquerade could; the remote's
// traffic selectors name pod addresses); on a connection's gateway, its
// NAT options (NETMAP pairs as the chart's iptables rules, single
// source IP, pods as the node: nodeIP, the remote's traffic to
// localNonClusterSubnet masqueraded) and a TCP MSS clamp toward the
// tunnel.
func rules(tx *knftables.Transaction, cluster []netip.Prefix, plans []connPlan, nodeIP netip.Addr) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("iks: strongSwan VPN routing and NAT")})
	post := &knftables.Chain{Name: chainPost, Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority + "-10")}
	pre := &knftables.Chain{Name: chainPre, Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.DNATPriority + "-10")}
	fwd := &knftables.Chain{Name: chainForward, Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.ForwardHook), Priority: knftables.PtrTo(knftables.ManglePriority)}
	set := &knftables.Set{Name: setRemote, Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.IntervalFlag},
		Comment: knftables.PtrTo("remote subnets of the VPN connections")}
	for _, o := range []knftables.Object{post, pre, fwd, set} {
		tx.Add(o)
		tx.Flush(o)
	}
	remote := remoteSets(plans)
	for _, p := range remote {
		tx.Add(&knftables.Element{Set: setRemote, Key: []string{p.String()}})
	}
	clusterSet := prefixSet(cluster)
	for _, cp := range plans {
		if cp.Role != RoleGateway {
			continue
		}
		p := cp.Plan
		real := prefixSet(p.RemoteTS)
		name := knftables.PtrTo("vpn " + p.Name)
		for _, n := range p.RemoteNAT {
			// Pods reach the remote's real n.From at n.To; the remote's
			// own connections to pods appear from n.To.
			tx.Add(&knftables.Rule{Chain: chainPre, Rule: knftables.Concat("ip daddr", n.To, "dnat ip prefix to ip daddr map {", n.To, ":", n.From, "}"), Comment: name})
			if clusterSet != "" {
				tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", n.From, "ip daddr", clusterSet, "snat ip prefix to ip saddr map {", n.From, ":", n.To, "}"), Comment: name})
			}
		}
		for _, n := range p.LocalNAT {
			// The remote sees cluster n.From as n.To.
			tx.Add(&knftables.Rule{Chain: chainPre, Rule: knftables.Concat("ip saddr", real, "ip daddr", n.To, "dnat ip prefix to ip daddr map {", n.To, ":", n.From, "}"), Comment: name})
			tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", n.From, "ip daddr", real, "snat ip prefix to ip saddr map {", n.From, ":", n.To, "}"), Comment: name})
		}
		if p.SingleSource.IsValid() && clusterSet != "" {
			tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", clusterSet, "ip daddr", real, "snat to", p.SingleSource), Comment: name})
		}
		if len(p.NonCluster) > 0 {
			// localNonClusterSubnet: hosts outside the cluster answer
			// this node, which sends the answer back into the tunnel.
			tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", real, "ip daddr", prefixSet(p.NonCluster), "masquerade"), Comment: name})
		}
		if p.PodSNAT && nodeIP.IsValid() {
			// enablePodSNAT: the remote sees (and answers) this node.
			tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", p.PodSNATFrom, "ip daddr", real, "snat to", nodeIP), Comment: name})
		}
	}
	if len(remote) > 0 && clusterSet != "" {
		tx.Add(&knftables.Rule{Chain: chainPost, Rule: knftables.Concat("ip saddr", clusterSet, "ip daddr", "@"+setRemote, "snat to ip saddr"),
			Comment: knftables.PtrTo("pod traffic to the remote keeps its source")})
		tx.Add(&knftables.Rule{Chain: chainForward, Rule: knftables.Concat("ip daddr", "@"+setRemote, "tcp flags syn / syn,rst tcp option maxseg size set rt mtu"),
			Comment: knftables.PtrTo("MSS fits the tunnel")})
	}
}

// prefixSet is an anonymous nft set of ps, or "" when empty.
func prefixSet(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return ""
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// applyNFT replaces the table's contents in one transaction.
func applyNFT(ctx context.Context, nft knftables.Interface, cluster []netip.Prefix, plans []connPlan, nodeIP netip.Addr) error {
	tx := nft.NewTransaction()
	rules(tx, cluster, plans, nodeIP)
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("vpnroute: load nftables table ip %s: %w", Table, err)
	}
	return nil
}
