// Package calicosel parses and evaluates Calico's label selector
// language (projectcalico.org/v3 selectors):
//
//	all()                     every endpoint
//	global()                  only non-namespaced resources (GlobalNetworkSets)
//	has(k)                    the label k exists
//	k == 'v', k != 'v'        equality; != also holds when k is missing
//	k in {'a','b'}            membership; not in also holds when k is missing
//	k contains 's', k starts with 's', k ends with 's'
//	!e, e && e, e || e, (e)
//
// Strings take single or double quotes. An empty selector is all().
// Parse returns a Selector whose String is the canonical text (equal
// selectors give equal text) and whose Matches takes any labels.Labels.
package calicosel

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Selector is a parsed Calico selector. It satisfies the Matches/String
// part of k8s.io/apimachinery's labels.Selector used by the policy model.
type Selector interface {
	Matches(labels.Labels) bool
	String() string
}

// Global is the label a non-namespaced resource carries for global()
// (as Calico's projectcalico.org/namespace is absent there, iks marks
// global network sets with it).
const Global = "projectcalico.org/global"

type node interface {
	Selector
	prec() int // for parentheses in String: 1 ||, 2 &&, 3 unary/atom
}

type all struct{}

func (all) Matches(labels.Labels) bool { return true }
func (all) String() string             { return "all()" }
func (all) prec() int                  { return 3 }

type global struct{}

func (global) Matches(l labels.Labels) bool { return l.Has(Global) }
func (global) String() string               { return "global()" }
func (global) prec() int                    { return 3 }

type has struct{ key string }

func (h has) Matches(l labels.Labels) bool { return l.Has(h.key) }
func (h has) String() string               { return "has(" + h.key + ")" }
func (has) prec() int                      { return 3 }

type op int

const (
	opEq op = iota
	opNe
	opContains
	opStarts
	opEnds
)

var opText = map[op]string{opEq: "==", opNe: "!=", opContains: "contains", opStarts: "starts with", opEnds: "ends with"}

type cmp struct {
	key, val string
	op       op
}

func (c cmp) Matches(l labels.Labels) bool {
	v, ok := l.Lookup(c.key)
	switch c.op {
	case opEq:
		return ok && v == c.val
	case opNe:
		return !ok || v != c.val
	case opContains:
		return ok && strings.Contains(v, c.val)
	case opStarts:
		return ok && strings.HasPrefix(v, c.val)
	default:
		return ok && strings.HasSuffix(v, c.val)
	}
}
func (c cmp) String() string { return c.key + " " + opText[c.op] + " " + quote(c.val) }
func (cmp) prec() int        { return 3 }

type in struct {
	key  string
	vals map[string]bool
	not  bool
}

func (s in) Matches(l labels.Labels) bool {
	v, ok := l.Lookup(s.key)
	if s.not {
		return !ok || !s.vals[v]
	}
	return ok && s.vals[v]
}

func (s in) String() string {
	vals := make([]string, 0, len(s.vals))
	for v := range s.vals {
		vals = append(vals, quote(v))
	}
	sort.Strings(vals)
	kw := " in "
	if s.not {
		kw = " not in "
	}
	return s.key + kw + "{" + strings.Join(vals, ", ") + "}"
}
func (in) prec() int { return 3 }

type not struct{ e node }

func (n not) Matches(l labels.Labels) bool { return !n.e.Matches(l) }
func (n not) String() string               { return "!" + paren(n.e, 3) }
func (not) prec() int                      { return 3 }

type and []node

func (a and) Matches(l labels.Labels) bool {
	for _, e := range a {
		if !e.Matches(l) {
			return false
		}
	}
	return true
}

func (a and) String() string {
	parts := make([]string, len(a))
	for i, e := range a {
		parts[i] = paren(e, 2)
	}
	return strings.Join(parts, " && ")
}
func (and) prec() int { return 2 }

type or []node

func (o or) Matches(l labels.Labels) bool {
	for _, e := range o {
		if e.Matches(l) {
			return true
		}
	}
	return false
}

func (o or) String() string {
	parts := make([]string, len(o))
	for i, e := range o {
		parts[i] = paren(e, 1)
	}
	return strings.Join(parts, " || ")
}
func (or) prec() int { return 1 }

func paren(e node, min int) string {
	if e.prec() < min {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func quote(s string) string {
	if strings.Contains(s, "'") {
		return `"` + s + `"`
	}
	return "'" + s + "'"
}

// All is the selector all().
func All() Selector { return all{} }

// Parse parses a selector; "" (or only blanks) is all().
func Parse(s string) (Selector, error) {
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if len(p.toks) == 0 {
		return all{}, nil
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, p.errf("unexpected %s after a complete expression; join expressions with && or ||", p.toks[p.pos])
	}
	return e, nil
}

// MustParse is Parse for constant selectors; it panics on an error.
func MustParse(s string) Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// Error is a selector syntax error: the selector, the position (0-based
// byte offset) and what was wrong there.
type Error struct {
	Selector string
	Pos      int
	Msg      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("selector %q: at offset %d: %s", e.Selector, e.Pos, e.Msg)
}
