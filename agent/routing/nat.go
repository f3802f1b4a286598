package routing

import (
	"context"
	"fmt"
	"net/netip"
)

// NATBackend is the packet-filter framework NAT outgoing is written with:
// the same one kube-proxy uses on this node, so a node never mixes them.
type NATBackend string

// The NAT outgoing backends.
const (
	// NATNFTables writes the table NATTable with knftables (nft only).
	NATNFTables NATBackend = "nftables"
	// NATIPTables writes the nat-table chain NATOutgoingChain (iptables
	// tools, legacy or nft backend).
	NATIPTables NATBackend = "iptables"
)

// EnsureNATOutgoing makes pod traffic from clusterCIDR to any destination
// outside clusterCIDR and serviceCIDR leave with the node's address, as
// IKS's NAT outgoing does; pod-to-pod and node-to-pod traffic keep their
// source. The rules are replaced atomically, so calling it again with the
// same or new CIDRs is safe. Rules the other backend left (a node that
// switched kube-proxy mode) are removed when that backend's tool exists.
func EnsureNATOutgoing(ctx context.Context, backend NATBackend, clusterCIDR, serviceCIDR netip.Prefix) error {
	if !clusterCIDR.IsValid() || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("routing: cluster CIDR %q is not an IPv4 prefix; pass the pod range, e.g. 172.30.0.0/16", clusterCIDR)
	}
	if !serviceCIDR.IsValid() || !serviceCIDR.Addr().Is4() {
		return fmt.Errorf("routing: service CIDR %q is not an IPv4 prefix; pass the service range, e.g. 172.21.0.0/16", serviceCIDR)
	}
	c, s := clusterCIDR.Masked(), serviceCIDR.Masked()
	switch backend {
	case NATNFTables:
		if err := ensureNATNFTables(ctx, c, s); err != nil {
			return err
		}
		removeNATIPTables(ctx)
		return nil
	case NATIPTables:
		if err := ensureNATIPTables(ctx, c, s); err != nil {
			return err
		}
		removeNATNFTables(ctx)
		return nil
	default:
		return fmt.Errorf("routing: NAT outgoing backend %q: use %q or %q (the node's kube-proxy mode)", backend, NATNFTables, NATIPTables)
	}
}
