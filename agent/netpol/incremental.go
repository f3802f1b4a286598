package netpol

import (
	"fmt"
	"maps"
	"strings"
)

// Incremental pod changes. A pod's add, delete or label change changes
// only set elements; CompileInput records, for each set filled from pods,
// a memberFn giving the elements one endpoint contributes. UpdatePods
// re-checks only the changed pods against those cached selectors and
// returns a Program that shares everything else with its base, and the
// Writer sends only the element changes.

// addFn takes one element's key parts.
type addFn func(key ...string)

// memberFn calls add with each element e gives a set.
type memberFn func(e *Endpoint, add addFn)

// setDelta is what UpdatePods changed in one set, by element text.
type setDelta struct {
	add, del map[string][]string
}

// PodChange is one pod's endpoint before and after a change (nil: no
// endpoint: the pod did not exist, was deleted, has no address or runs
// on the host network).
type PodChange struct{ Old, New *Endpoint }

func selectorMember(sel *Selector) memberFn {
	return func(e *Endpoint, add addFn) {
		if sel.Matches(e) {
			add(e.IP.String())
		}
	}
}

// localMember: the pods of node that sel selects.
func localMember(sel *Selector, node string) memberFn {
	return func(e *Endpoint, add addFn) {
		if e.Node == node && sel.Matches(e) {
			add(e.IP.String())
		}
	}
}

// namedPortMember: address . protocol . port of each of the wanted named
// ports e has, when on (nil: any endpoint) selects e.
func namedPortMember(want []Port, on memberFn) memberFn {
	return func(e *Endpoint, add addFn) {
		if len(e.Ports) == 0 {
			return
		}
		if on != nil {
			ok := false
			on(e, func(...string) { ok = true })
			if !ok {
				return
			}
		}
		for _, w := range want {
			if w.Name == "" {
				continue
			}
			for _, np := range e.Ports {
				if np.Name == w.Name && np.Protocol == w.Protocol {
					add(e.IP.String(), np.Protocol, fmt.Sprint(np.Port))
				}
			}
		}
	}
}

// UpdatePods returns prev with changes applied to its pod sets: each
// changed pod is re-checked against every set's selector, nothing else
// is recompiled. The result shares prev's chains and unchanged sets.
// Endpoints with one address must not be in two changes.
func UpdatePods(prev *Program, changes []PodChange) *Program {
	next := &Program{Chains: prev.Chains, Sets: maps.Clone(prev.Sets), members: prev.members, base: prev,
		delta: map[string]*setDelta{}}
	for name, member := range prev.members {
		var d *setDelta
		for _, c := range changes {
			if c.Old != nil {
				member(c.Old, func(key ...string) {
					if d == nil {
						d = &setDelta{add: map[string][]string{}, del: map[string][]string{}}
					}
					d.del[strings.Join(key, " . ")] = key
				})
			}
			if c.New != nil {
				member(c.New, func(key ...string) {
					if d == nil {
						d = &setDelta{add: map[string][]string{}, del: map[string][]string{}}
					}
					k := strings.Join(key, " . ")
					if _, was := d.del[k]; was {
						delete(d.del, k) // unchanged
						return
					}
					d.add[k] = key
				})
			}
		}
		if d == nil || len(d.add)+len(d.del) == 0 {
			continue
		}
		old := prev.Sets[name]
		s := &Set{Type: old.Type, Interval: old.Interval, Comment: old.Comment, Elements: maps.Clone(old.Elements)}
		for k := range d.del {
			delete(s.Elements, k)
		}
		maps.Copy(s.Elements, d.add)
		next.Sets[name] = s
		next.delta[name] = d
	}
	return next
}
