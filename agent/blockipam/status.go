package blockipam

import (
	"context"
	"net/netip"

	"github.com/iks-dev/iks/agent/ipam"
	"github.com/iks-dev/iks/internal/netapi"
)

// blockStatus counts the allocations inside each block (by address, so
// allocations recorded under an older block set count too).
func blockStatus(allocs []ipam.Allocation, blocks []netip.Prefix) map[netip.Prefix]netapi.IPAMBlockStatus {
	out := make(map[netip.Prefix]netapi.IPAMBlockStatus, len(blocks))
	for _, b := range blocks {
		out[b] = netapi.IPAMBlockStatus{Capacity: netapi.BlockCapacity(b.Bits())}
	}
	for _, a := range allocs {
		for _, b := range blocks {
			if b.Contains(a.IP) {
				st := out[b]
				st.Allocated++
				out[b] = st
				break
			}
		}
	}
	return out
}

// report writes each block's usage into its status when it changed.
func (m *Manager) report(ctx context.Context) {
	allocs, err := m.store.Allocations()
	if err != nil {
		m.log.Warn("cannot read the node's allocations", "err", err)
		return
	}
	for p, want := range blockStatus(allocs, m.Blocks()) {
		if m.reportedStatus(p) == want {
			continue
		}
		b, err := m.blocks.Get(ctx, netapi.BlockName(p))
		if err != nil {
			m.log.Warn("cannot read block to report its usage", "block", p.String(), "err", err)
			continue
		}
		if b.Status != want {
			b.Status = want
			if _, err := m.blocks.UpdateStatus(ctx, b); err != nil {
				m.log.Warn("cannot report block usage; retrying", "block", p.String(), "err", err)
				continue
			}
		}
		m.setReported(p, want)
	}
}

func (m *Manager) reportedStatus(p netip.Prefix) netapi.IPAMBlockStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reported[p]
}

func (m *Manager) setReported(p netip.Prefix, st netapi.IPAMBlockStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reported == nil {
		m.reported = map[netip.Prefix]netapi.IPAMBlockStatus{}
	}
	m.reported[p] = st
}

// forget drops what was reported for p (a new object of the block).
func (m *Manager) forget(p netip.Prefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.reported, p)
}
