package blockipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/netapi"
)

// reconcile makes the node's block set match the API: the blocks listed
// with spec.node = this node, plus every block the node still needs (in
// memory, in the store's set, or holding a local allocation), re-created
// when they went missing (the garbage collector deletes blocks of a Node
// object that was re-created). Blocks whose owner reference is not the
// current Node object are re-parented. With claimIfEmpty a node without
// blocks claims the lowest free one.
func (m *Manager) reconcile(ctx context.Context, claimIfEmpty bool) error {
	m.growMu.Lock()
	defer m.growMu.Unlock()
	node, err := m.cs.CoreV1().Nodes().Get(ctx, m.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Node %s: %w", m.cfg.NodeName, err)
	}
	uid := string(node.UID)
	needed, err := m.neededBlocks()
	if err != nil {
		return err
	}
	listed, err := m.nodeBlocks(ctx, needed, claimIfEmpty)
	if err != nil {
		return err
	}
	have := map[netip.Prefix]*netapi.IPAMBlock{}
	for _, b := range listed {
		if b.Spec.Node != m.cfg.NodeName {
			continue
		}
		p, err := b.Prefix()
		if err == nil && !m.fits(p) {
			err = fmt.Errorf("IPAMBlock %s (%s) is not a %s block of the pod range %s", b.Name, p,
				netapi.FormatSize(m.network.BlockSize), m.network.PodCIDR)
		}
		if err != nil {
			m.log.Warn("ignoring an IPAMBlock of this node; delete it if no pod uses it", "err", err)
			continue
		}
		have[p] = b
	}
	for _, p := range needed {
		if have[p] != nil {
			continue
		}
		b, err := m.claim(ctx, p, uid)
		switch {
		case apierrors.IsAlreadyExists(err):
			other, gerr := m.blocks.Get(ctx, netapi.BlockName(p))
			if gerr != nil {
				return fmt.Errorf("get IPAMBlock %s: %w", netapi.BlockName(p), gerr)
			}
			if other.Spec.Node == m.cfg.NodeName {
				have[p] = other
				continue
			}
			m.log.Error("a block this node used is now claimed by another node; pods of this node with addresses in it must be re-created",
				"block", p.String(), "owner", other.Spec.Node)
		case err != nil:
			return err
		default:
			m.log.Info("re-claimed address block this node still uses", "block", p.String())
			m.forget(p)
			have[p] = b
		}
	}
	for p, b := range have {
		if b.OwnedBy(m.cfg.NodeName, uid) {
			continue
		}
		b.OwnerReferences = slices.DeleteFunc(b.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Kind == "Node" })
		b.OwnerReferences = append(b.OwnerReferences, netapi.NodeOwner(m.cfg.NodeName, uid))
		if _, err := m.blocks.Update(ctx, b); err != nil {
			return fmt.Errorf("re-parent IPAMBlock %s to Node %s (uid %s): %w", b.Name, m.cfg.NodeName, uid, err)
		}
		m.log.Info("re-parented address block to the current Node object", "block", p.String(), "uid", uid)
	}
	set := make([]netip.Prefix, 0, len(have))
	for p := range have {
		set = append(set, p)
	}
	if len(set) == 0 && claimIfEmpty {
		p, err := m.claimNext(ctx, uid, true)
		if err != nil {
			return err
		}
		set = append(set, p)
	}
	m.mu.Lock()
	m.uid = uid
	m.mu.Unlock()
	return m.setOwn(set)
}

// nodeBlocks returns the node's IPAMBlocks. At start (startup) it reads
// only the blocks it needs (the local store's, none on a first start) by
// name: right after the apiserver starts, a LIST of IPAMBlocks waits
// about a second for their watch cache (429 with Retry-After, retried by
// client-go), while a GET is read from etcd at once; blocks the API
// gives the node beyond those come with the loop's next LIST.
func (m *Manager) nodeBlocks(ctx context.Context, needed []netip.Prefix, startup bool) ([]*netapi.IPAMBlock, error) {
	if !startup {
		return m.blocks.List(ctx, m.cfg.NodeName)
	}
	var out []*netapi.IPAMBlock
	for _, p := range needed {
		b, err := m.blocks.Get(ctx, netapi.BlockName(p))
		switch {
		case apierrors.IsNotFound(err):
			continue // claimed again below
		case err != nil:
			return nil, fmt.Errorf("get IPAMBlock %s: %w", netapi.BlockName(p), err)
		}
		out = append(out, b)
	}
	return out, nil
}

// neededBlocks are the blocks the node must keep: those in memory, the
// store's set and every block holding a local allocation.
func (m *Manager) neededBlocks() ([]netip.Prefix, error) {
	stored, err := m.store.Blocks()
	if err != nil {
		return nil, err
	}
	allocs, err := m.store.Allocations()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if m.fits(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range append(m.Blocks(), stored...) {
		add(p)
	}
	for _, a := range allocs {
		if m.network.PodCIDR.Contains(a.IP) {
			add(netip.PrefixFrom(a.IP, m.network.BlockSize).Masked())
		}
	}
	return out, nil
}

// fits reports whether p is a block of the cluster's size in the pod range.
func (m *Manager) fits(p netip.Prefix) bool {
	return p.Bits() == m.network.BlockSize && m.network.PodCIDR.Contains(p.Addr())
}

// claim claims the IPAMBlock for p (BlockClient.Claim: a server-side
// apply, not held back after the CRD's establishment as a create is);
// another node's block comes back as AlreadyExists.
func (m *Manager) claim(ctx context.Context, p netip.Prefix, uid string) (*netapi.IPAMBlock, error) {
	return m.blocks.Claim(ctx, netapi.NewIPAMBlock(p, m.cfg.NodeName, uid))
}

// take claims p for claimNext: ok when claimed, false when another node
// holds it.
func (m *Manager) take(ctx context.Context, p netip.Prefix, uid string) (bool, error) {
	_, err := m.claim(ctx, p, uid)
	switch {
	case err == nil:
		m.log.Info("claimed address block", "block", p.String(), "name", netapi.BlockName(p))
		m.forget(p)
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil // another node was faster
	default:
		return false, fmt.Errorf("claim IPAMBlock %s: %w", netapi.BlockName(p), err)
	}
}

// directClaims is how many of the lowest blocks a first claim tries
// before it lists the taken ones.
const directClaims = 8

// claimNext claims the lowest free block of the pod range. A node's first
// claim (first) tries the lowest blocks in turn before it lists the taken
// ones: at a server's first start the IPAMBlocks were just defined and a
// LIST waits about a second for their watch cache (a small cluster's next
// block is among the first few).
func (m *Manager) claimNext(ctx context.Context, uid string, first bool) (netip.Prefix, error) {
	if first {
		n := 0
		for p := range netapi.Blocks(m.network.PodCIDR, m.network.BlockSize) {
			if n++; n > directClaims {
				break
			}
			ok, err := m.take(ctx, p, uid)
			if err != nil {
				return netip.Prefix{}, err
			}
			if ok {
				return p, nil
			}
		}
	}
	all, err := m.blocks.List(ctx, "")
	if err != nil {
		return netip.Prefix{}, err
	}
	taken := make(map[string]bool, len(all))
	for _, b := range all {
		taken[b.Name] = true
	}
	for p := range netapi.Blocks(m.network.PodCIDR, m.network.BlockSize) {
		if taken[netapi.BlockName(p)] {
			continue
		}
		ok, err := m.take(ctx, p, uid)
		if err != nil {
			return netip.Prefix{}, err
		}
		if ok {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("the pod range %s has no free %s block: all %d are claimed (see `iks ipam show`); delete unused nodes, or create the cluster with a larger --cluster-cidr or a smaller --ipam-block-size",
		m.network.PodCIDR, netapi.FormatSize(m.network.BlockSize), netapi.BlockCount(m.network.PodCIDR, m.network.BlockSize))
}

// grow serves the CNI plugin's request for room: when the block set has
// no free address it claims another block and adds it to the set.
func (m *Manager) grow(ctx context.Context) ([]netip.Prefix, error) {
	m.growMu.Lock()
	defer m.growMu.Unlock()
	m.mu.Lock()
	ready, uid := m.ready, m.uid
	m.mu.Unlock()
	if !ready || uid == "" {
		return nil, fmt.Errorf("the iks agent cannot claim another address block yet: it is starting, or the server has not answered since it started")
	}
	free, err := m.store.Free()
	if err != nil {
		return nil, err
	}
	if free > 0 {
		return m.Blocks(), nil
	}
	p, err := m.claimNext(ctx, uid, false)
	if err != nil {
		return nil, err
	}
	if err := m.setOwn(append(m.Blocks(), p)); err != nil {
		return nil, err
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return m.Blocks(), nil
}
