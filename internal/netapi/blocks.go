package netapi

import (
	"fmt"
	"iter"
	"net/netip"
	"strconv"
	"strings"
)

// Block sizes iks accepts (prefix lengths), and the default (as Calico).
const (
	MinBlockSize     = 20
	MaxBlockSize     = 30
	DefaultBlockSize = 26
)

// BlockName is the IPAMBlock object name of a block: the CIDR with dots
// and the slash turned into dashes, 172.30.0.64/26 -> 172-30-0-64-26.
func BlockName(block netip.Prefix) string {
	return strings.NewReplacer(".", "-", "/", "-").Replace(block.String())
}

// ParseBlockName is the inverse of BlockName.
func ParseBlockName(name string) (netip.Prefix, error) {
	parts := strings.Split(name, "-")
	if len(parts) != 5 {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPAMBlock name such as 172-30-0-64-26", name)
	}
	p, err := netip.ParsePrefix(strings.Join(parts[:4], ".") + "/" + parts[4])
	if err != nil || p.Masked() != p || BlockName(p) != name {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPAMBlock name such as 172-30-0-64-26", name)
	}
	return p, nil
}

// BlockCapacity is the number of addresses pods can get from a block of
// the given prefix length: all but the first (the node's tunnel address)
// and the last, as the node-local allocator hands them out.
func BlockCapacity(size int) int {
	if size < 0 || size > 30 {
		return 0
	}
	return 1<<(32-size) - 2
}

// ValidateBlockSize checks that blocks of prefix length size fit in the pod
// range and are within the supported sizes.
func ValidateBlockSize(podRange netip.Prefix, size int) error {
	if size < MinBlockSize || size > MaxBlockSize {
		return fmt.Errorf("block size /%d is out of range: use a prefix length between /%d and /%d (default /%d)",
			size, MinBlockSize, MaxBlockSize, DefaultBlockSize)
	}
	if size < podRange.Bits() {
		return fmt.Errorf("block size /%d does not fit in the pod range %s: use a prefix length of at least /%d, or a larger pod range",
			size, podRange, podRange.Bits())
	}
	return nil
}

// Blocks yields every block of prefix length size in the pod range, lowest
// address first: the order in which nodes claim them.
func Blocks(podRange netip.Prefix, size int) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		if size < podRange.Bits() || size > 32 || !podRange.Addr().Is4() {
			return
		}
		base := u32(podRange.Masked().Addr())
		n := uint64(1) << (size - podRange.Bits())
		step := uint64(1) << (32 - size)
		for i := range n {
			a := uint32(uint64(base) + i*step)
			if !yield(netip.PrefixFrom(addr(a), size)) {
				return
			}
		}
	}
}

// BlockCount is the number of blocks of prefix length size in the range.
func BlockCount(podRange netip.Prefix, size int) int {
	if size < podRange.Bits() {
		return 0
	}
	return 1 << (size - podRange.Bits())
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// FormatSize renders a prefix length as "/26".
func FormatSize(size int) string { return "/" + strconv.Itoa(size) }
