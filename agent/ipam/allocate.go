package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ErrExhausted is returned (wrapped) by Allocate when every usable address of
// the given blocks is allocated.
var ErrExhausted = errors.New("ipam: address blocks exhausted")

// BlockUsage reports how many addresses of one block are allocated.
type BlockUsage struct {
	Block netip.Prefix
	// Used is the number of allocated addresses in the block.
	Used int
	// Capacity is the number of usable addresses (block size minus the
	// reserved first and last address).
	Capacity int
	// Retired is true when the block is no longer in the set most recently
	// passed to Allocate but still holds allocations.
	Retired bool
}

// ValidateBlocks checks that blocks is a non-empty set of non-overlapping
// IPv4 network prefixes of length /30 or shorter.
func ValidateBlocks(blocks []netip.Prefix) error {
	if len(blocks) == 0 {
		return errors.New("ipam: no address blocks given; the node needs at least one block of the pod range, e.g. 172.30.0.0/24")
	}
	for i, b := range blocks {
		if !b.IsValid() {
			return fmt.Errorf("ipam: block %d is not a valid prefix; use CIDR notation such as 172.30.0.0/24", i)
		}
		if !b.Addr().Is4() {
			return fmt.Errorf("ipam: block %s is not IPv4; pod blocks must be IPv4 prefixes such as 172.30.0.0/24", b)
		}
		if b.Bits() > 30 {
			return fmt.Errorf("ipam: block %s is too small; use /30 or larger (first and last address are reserved)", b)
		}
		if b.Masked() != b {
			return fmt.Errorf("ipam: block %s has host bits set; use %s", b, b.Masked())
		}
		for _, o := range blocks[:i] {
			if o.Overlaps(b) {
				return fmt.Errorf("ipam: blocks %s and %s overlap; give each address block once", o, b)
			}
		}
	}
	return nil
}

// Allocate returns the address held by handle, allocating a free one from
// blocks if handle holds none yet. It is idempotent: the same handle gets the
// same address back, even if that address lies in a block no longer given.
// blocks also becomes the store's block set (see SetBlocks). The error wraps
// ErrExhausted when no usable address is free.
func (s *Store) Allocate(blocks []netip.Prefix, handle string) (netip.Addr, error) {
	if handle == "" {
		return netip.Addr{}, errors.New("ipam: empty handle; pass the container ID and interface name")
	}
	if err := ValidateBlocks(blocks); err != nil {
		return netip.Addr{}, err
	}
	var ip netip.Addr
	err := s.update(func(st *state) (bool, error) {
		changed := false
		if !slices.Equal(st.Blocks, blocks) {
			st.Blocks = slices.Clone(blocks)
			changed = true
		}
		var err error
		var allocated bool
		ip, allocated, err = allocateIn(st, handle)
		return changed || allocated, err
	})
	if err != nil {
		return netip.Addr{}, err
	}
	return ip, nil
}

// AllocateFromSet is Allocate with the store's own block set, the blocks
// the node's agent claimed and gave to SetBlocks. With no block set yet, or
// every address of it taken, the error wraps ErrExhausted: the caller asks
// the agent for another block and tries again.
func (s *Store) AllocateFromSet(handle string) (netip.Addr, error) {
	if handle == "" {
		return netip.Addr{}, errors.New("ipam: empty handle; pass the container ID and interface name")
	}
	var ip netip.Addr
	err := s.update(func(st *state) (bool, error) {
		var err error
		var allocated bool
		ip, allocated, err = allocateIn(st, handle)
		return allocated, err
	})
	if err != nil {
		return netip.Addr{}, err
	}
	return ip, nil
}

// allocateIn gives handle an address of st.Blocks; it reports whether it
// changed st.
func allocateIn(st *state, handle string) (netip.Addr, bool, error) {
	if a, ok := st.Allocations[handle]; ok {
		return a.IP, false, nil
	}
	if len(st.Blocks) == 0 {
		return netip.Addr{}, false, fmt.Errorf("%w: this node has no address block yet; the agent claims one at start", ErrExhausted)
	}
	used := make(map[netip.Addr]bool, len(st.Allocations))
	for _, a := range st.Allocations {
		used[a.IP] = true
	}
	for cand, block := range candidates(st.Blocks, st.Last) {
		if used[cand] {
			continue
		}
		st.Last = cand
		st.Allocations[handle] = Allocation{IP: cand, Block: block, Created: time.Now().UTC()}
		return cand, true, nil
	}
	return netip.Addr{}, false, fmt.Errorf("%w: all %d usable addresses of %s are allocated; the node needs another "+
		"block of the pod range (or pods must be removed from it)", ErrExhausted, totalCapacity(st.Blocks), joinBlocks(st.Blocks))
}

// SetBlocks replaces the store's block set: the blocks new addresses come
// from. Allocations in blocks left out stay valid (and releasable) and are
// reported as retired by Usage. An empty set is allowed.
func (s *Store) SetBlocks(blocks []netip.Prefix) error {
	if len(blocks) > 0 {
		if err := ValidateBlocks(blocks); err != nil {
			return err
		}
	}
	blocks = slices.Clone(blocks)
	slices.SortFunc(blocks, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return s.update(func(st *state) (bool, error) {
		if slices.Equal(st.Blocks, blocks) {
			return false, nil
		}
		st.Blocks = blocks
		return true, nil
	})
}

// Blocks returns the store's block set.
func (s *Store) Blocks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := s.view(func(st *state) error {
		out = slices.Clone(st.Blocks)
		return nil
	})
	return out, err
}

// Free returns how many usable addresses of the block set are not
// allocated.
func (s *Store) Free() (int, error) {
	n := 0
	err := s.view(func(st *state) error {
		n = totalCapacity(st.Blocks)
		for _, a := range st.Allocations {
			if slices.ContainsFunc(st.Blocks, func(b netip.Prefix) bool { return b.Contains(a.IP) }) {
				n--
			}
		}
		return nil
	})
	return n, err
}

// Release frees the address held by handle. Releasing an unknown handle is
// not an error.
func (s *Store) Release(handle string) error {
	return s.update(func(st *state) (bool, error) {
		if _, ok := st.Allocations[handle]; !ok {
			return false, nil
		}
		delete(st.Allocations, handle)
		return true, nil
	})
}

// Lookup returns the address held by handle, if any.
func (s *Store) Lookup(handle string) (netip.Addr, bool, error) {
	var a Allocation
	var ok bool
	err := s.view(func(st *state) error {
		a, ok = st.Allocations[handle]
		return nil
	})
	return a.IP, ok, err
}

// Allocations returns every allocation, ordered by address.
func (s *Store) Allocations() ([]Allocation, error) {
	var out []Allocation
	err := s.view(func(st *state) error {
		for h, a := range st.Allocations {
			a.Handle = h
			out = append(out, a)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Allocation) int { return a.IP.Compare(b.IP) })
	return out, err
}

// Usage reports every block most recently passed to Allocate and every
// retired block that still holds allocations, ordered by address.
func (s *Store) Usage() ([]BlockUsage, error) {
	var out []BlockUsage
	err := s.view(func(st *state) error {
		byBlock := map[netip.Prefix]*BlockUsage{}
		for _, b := range st.Blocks {
			byBlock[b] = &BlockUsage{Block: b, Capacity: capacity(b)}
		}
		for _, a := range st.Allocations {
			u, ok := byBlock[a.Block]
			if !ok {
				u = &BlockUsage{Block: a.Block, Capacity: capacity(a.Block), Retired: true}
				byBlock[a.Block] = u
			}
			u.Used++
		}
		for _, u := range byBlock {
			out = append(out, *u)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b BlockUsage) int {
		return cmp.Or(a.Block.Addr().Compare(b.Block.Addr()), cmp.Compare(a.Block.Bits(), b.Block.Bits()))
	})
	return out, err
}

// candidates yields every usable address of blocks with its block, starting
// right after last and wrapping around, so each address is yielded once.
func candidates(blocks []netip.Prefix, last netip.Addr) func(yield func(netip.Addr, netip.Prefix) bool) {
	return func(yield func(netip.Addr, netip.Prefix) bool) {
		start := slices.IndexFunc(blocks, func(b netip.Prefix) bool { return b.Contains(last) })
		if start < 0 {
			start, last = 0, netip.Addr{}
		}
		// The first pass covers the start block after last, then the other
		// blocks; the final pass covers the start block up to last.
		for i := range len(blocks) + 1 {
			b := blocks[(start+i)%len(blocks)]
			first, end := firstUsable(b), lastUsable(b)
			from, to := first, end
			switch {
			case i == 0 && last.IsValid():
				from = last.Next()
			case i == len(blocks):
				if !last.IsValid() {
					return
				}
				to = last
			}
			for a := from; a.IsValid() && a.Compare(to) <= 0; a = a.Next() {
				if !yield(a, b) {
					return
				}
			}
		}
	}
}

// firstUsable is the address after the block's reserved first address.
func firstUsable(b netip.Prefix) netip.Addr { return b.Addr().Next() }

// lastUsable is the address before the block's reserved last address.
func lastUsable(b netip.Prefix) netip.Addr { return broadcast(b).Prev() }

func broadcast(b netip.Prefix) netip.Addr {
	a := b.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= ^uint32(0) >> b.Bits()
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func capacity(b netip.Prefix) int { return 1<<(32-b.Bits()) - 2 }

func totalCapacity(blocks []netip.Prefix) int {
	n := 0
	for _, b := range blocks {
		n += capacity(b)
	}
	return n
}

func joinBlocks(blocks []netip.Prefix) string {
	s := make([]string, len(blocks))
	for i, b := range blocks {
		s[i] = b.String()
	}
	return "blocks " + strings.Join(s, ", ")
}
