package netpol

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"sigs.k8s.io/knftables"
)

// TableName is the engine's nftables table (family inet).
const TableName = "iks-policy"

// baseChains are the hooked chains: forwarded traffic to and from pods,
// and pod traffic to the node itself. The node's own traffic to its pods
// (output hook: kubelet probes) is never filtered, as upstream and Calico.
var baseChains = map[string]knftables.BaseChainHook{
	ChainForward: knftables.ForwardHook,
	ChainInput:   knftables.InputHook,
}

// Writer programs Programs into the table, incrementally after the first.
type Writer struct {
	nft  knftables.Interface
	last *Program
}

// NewWriter returns a Writer on nft (knftables.New(InetFamily, TableName)).
func NewWriter(nft knftables.Interface) *Writer { return &Writer{nft: nft} }

// Stats counts what one Apply changed.
type Stats struct {
	Full                   bool
	Chains, Added, Deleted int
}

// Apply makes the table hold p. The first call (and the one after a
// failure) replaces the whole table in one atomic transaction; later ones
// only change what differs from the last Program.
func (w *Writer) Apply(ctx context.Context, p *Program) (Stats, error) {
	tx := w.nft.NewTransaction()
	var st Stats
	switch {
	case w.last == nil:
		st = full(tx, p)
	case p.base != nil && p.base == w.last:
		st = applyDelta(tx, p)
	default:
		st = diff(tx, w.last, p)
	}
	if tx.NumOperations() == 0 {
		w.last = p // same content
		return st, nil
	}
	if err := w.nft.Run(ctx, tx); err != nil {
		w.last = nil
		return st, fmt.Errorf("program nftables table inet %s: %w", TableName, err)
	}
	w.last = p
	return st, nil
}

func full(tx *knftables.Transaction, p *Program) Stats {
	st := Stats{Full: true}
	// add+delete+add: the table is replaced atomically, never missing.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("iks: network policy (agent/netpol)")})
	for _, name := range sortedKeys(p.Sets) {
		s := p.Sets[name]
		tx.Add(setObj(name, s))
		for _, k := range sortedKeys(s.Elements) {
			tx.Add(&knftables.Element{Set: name, Key: s.Elements[k]})
			st.Added++
		}
	}
	for _, name := range sortedKeys(p.Chains) {
		tx.Add(chainObj(name, p.Chains[name]))
	}
	for _, name := range sortedKeys(p.Chains) {
		for _, r := range p.Chains[name].Rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
		st.Chains++
	}
	return st
}

// applyDelta sends what UpdatePods changed in p's base: set elements
// only.
func applyDelta(tx *knftables.Transaction, p *Program) Stats {
	var st Stats
	for name, d := range p.delta {
		for _, key := range d.del {
			tx.Delete(&knftables.Element{Set: name, Key: key})
			st.Deleted++
		}
		for _, key := range d.add {
			tx.Add(&knftables.Element{Set: name, Key: key})
			st.Added++
		}
	}
	return st
}

func diff(tx *knftables.Transaction, old, p *Program) Stats {
	var st Stats
	for _, name := range sortedKeys(p.Sets) {
		s := p.Sets[name]
		o, ok := old.Sets[name]
		if !ok {
			tx.Add(setObj(name, s))
			o = &Set{}
		}
		// Element order within a transaction does not matter: no sorting
		// (sets may hold thousands of pods).
		for k, key := range o.Elements {
			if _, keep := s.Elements[k]; !keep {
				tx.Delete(&knftables.Element{Set: name, Key: key})
				st.Deleted++
			}
		}
		for k, key := range s.Elements {
			if _, had := o.Elements[k]; !had {
				tx.Add(&knftables.Element{Set: name, Key: key})
				st.Added++
			}
		}
	}
	for _, name := range sortedKeys(p.Chains) {
		if _, ok := old.Chains[name]; !ok {
			tx.Add(chainObj(name, p.Chains[name]))
		}
	}
	for _, name := range sortedKeys(p.Chains) {
		c := p.Chains[name]
		if o, ok := old.Chains[name]; ok && slices.Equal(o.Rules, c.Rules) {
			continue
		} else if ok {
			tx.Flush(&knftables.Chain{Name: name})
		}
		for _, r := range c.Rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
		st.Chains++
	}
	// Chains, then sets, that are gone: after the rules naming them. All
	// are flushed before any is deleted: a gone base chain may jump to
	// another gone chain.
	var gone []string
	for _, name := range sortedKeys(old.Chains) {
		if _, ok := p.Chains[name]; !ok {
			tx.Flush(&knftables.Chain{Name: name})
			gone = append(gone, name)
		}
	}
	for _, name := range gone {
		tx.Delete(&knftables.Chain{Name: name})
		st.Chains++
	}
	for _, name := range sortedKeys(old.Sets) {
		if _, ok := p.Sets[name]; !ok {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
	return st
}

func setObj(name string, s *Set) *knftables.Set {
	o := &knftables.Set{Name: name, Type: s.Type}
	if s.Interval {
		o.Flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	if s.Comment != "" {
		o.Comment = knftables.PtrTo(s.Comment)
	}
	return o
}

// hostBaseChains are the hooked chains of host endpoint policy
// (hostep.go), present while the node has host endpoints.
var hostBaseChains = map[string]struct {
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}{
	ChainOutput:    {knftables.OutputHook, knftables.FilterPriority},
	ChainPreDNAT:   {knftables.PreroutingHook, knftables.DNATPriority + " - 10"},
	ChainRawPre:    {knftables.PreroutingHook, knftables.RawPriority},
	ChainRawOutput: {knftables.OutputHook, knftables.RawPriority},
}

func chainObj(name string, c *Chain) *knftables.Chain {
	o := &knftables.Chain{Name: name}
	if hook, ok := baseChains[name]; ok {
		o.Type = knftables.PtrTo(knftables.FilterType)
		o.Hook = knftables.PtrTo(hook)
		o.Priority = knftables.PtrTo(knftables.FilterPriority)
	}
	if hb, ok := hostBaseChains[name]; ok {
		o.Type = knftables.PtrTo(knftables.FilterType)
		o.Hook = knftables.PtrTo(hb.hook)
		o.Priority = knftables.PtrTo(hb.priority)
	}
	if c.Comment != "" {
		o.Comment = knftables.PtrTo(c.Comment)
	}
	return o
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
