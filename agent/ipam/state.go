package ipam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// stateVersion is the version of the state file format written by this package.
const stateVersion = 1

// state is the content of the state file.
type state struct {
	Version int `json:"version"`
	// Blocks is the block set most recently passed to Allocate, kept so
	// that Usage can report blocks that have no allocations yet.
	Blocks []netip.Prefix `json:"blocks"`
	// Last is the address handed out most recently. The next search starts
	// after it, so a just-released address is not reused at once (stale
	// conntrack entries and neighbour caches still point at it).
	Last netip.Addr `json:"last,omitzero"`
	// Allocations maps handles to their addresses.
	Allocations map[string]Allocation `json:"allocations"`
}

// Allocation is one address held by one handle.
type Allocation struct {
	Handle string `json:"-"`
	// IP is the allocated address.
	IP netip.Addr `json:"ip"`
	// Block is the block the address was allocated from.
	Block netip.Prefix `json:"block"`
	// Created is when the address was allocated.
	Created time.Time `json:"created"`
}

func newState() *state {
	return &state{Version: stateVersion, Allocations: map[string]Allocation{}}
}

func encodeState(st *state) ([]byte, error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// decodeState parses and validates the state file content. Any inconsistency
// (unknown version, invalid or duplicate address, address outside its block)
// is an error: guessing could hand out an address twice.
func decodeState(data []byte) (*state, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("file is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	st := &state{}
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("unsupported version %d (this binary reads version %d)", st.Version, stateVersion)
	}
	if st.Allocations == nil {
		st.Allocations = map[string]Allocation{}
	}
	owner := make(map[netip.Addr]string, len(st.Allocations))
	for handle, a := range st.Allocations {
		if handle == "" {
			return nil, fmt.Errorf("allocation with an empty handle")
		}
		if !a.IP.Is4() {
			return nil, fmt.Errorf("allocation %q has invalid address %q", handle, a.IP)
		}
		if !a.Block.IsValid() || !a.Block.Contains(a.IP) {
			return nil, fmt.Errorf("allocation %q: address %s is not inside its block %s", handle, a.IP, a.Block)
		}
		if other, dup := owner[a.IP]; dup {
			return nil, fmt.Errorf("address %s is allocated to both %q and %q", a.IP, other, handle)
		}
		owner[a.IP] = handle
	}
	return st, nil
}
