package bgppeer

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
)

// ParseSelector parses a Calico-style node selector into a label
// selector. Supported: terms joined by "&&", each one of
//
//	all()                    every node (also the empty selector)
//	has(key)   !has(key)
//	key == 'v' key != 'v'    (single or double quotes)
//	key in {'a', 'b'}   key not in {'a', 'b'}
//
// "||" and parentheses are not supported: use several BGPPeers instead.
func ParseSelector(s string) (labels.Selector, error) {
	s = strings.TrimSpace(s)
	sel := labels.NewSelector()
	if s == "" || s == "all()" {
		return sel, nil
	}
	if strings.Contains(s, "||") {
		return nil, fmt.Errorf("only terms joined by && are supported (has(k), !has(k), k == 'v', k != 'v', k in {...}, k not in {...}, all())")
	}
	for _, term := range strings.Split(s, "&&") {
		r, err := parseTerm(strings.TrimSpace(term))
		if err != nil {
			return nil, err
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}

func parseTerm(t string) (*labels.Requirement, error) {
	switch {
	case t == "all()":
		return labels.NewRequirement("iks.io/never-a-label", selection.DoesNotExist, nil)
	case strings.HasPrefix(t, "!has(") && strings.HasSuffix(t, ")"):
		return labels.NewRequirement(strings.TrimSpace(t[5:len(t)-1]), selection.DoesNotExist, nil)
	case strings.HasPrefix(t, "has(") && strings.HasSuffix(t, ")"):
		return labels.NewRequirement(strings.TrimSpace(t[4:len(t)-1]), selection.Exists, nil)
	}
	for _, op := range []struct {
		tok string
		op  selection.Operator
	}{{" not in ", selection.NotIn}, {" in ", selection.In}, {"==", selection.Equals}, {"!=", selection.NotEquals}} {
		k, v, ok := strings.Cut(t, op.tok)
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var vals []string
		if op.op == selection.In || op.op == selection.NotIn {
			if !strings.HasPrefix(v, "{") || !strings.HasSuffix(v, "}") {
				return nil, fmt.Errorf("term %q: write the values as {'a', 'b'}", t)
			}
			for _, e := range strings.Split(v[1:len(v)-1], ",") {
				q, err := unquote(strings.TrimSpace(e))
				if err != nil {
					return nil, fmt.Errorf("term %q: %w", t, err)
				}
				vals = append(vals, q)
			}
		} else {
			q, err := unquote(v)
			if err != nil {
				return nil, fmt.Errorf("term %q: %w", t, err)
			}
			vals = []string{q}
		}
		r, err := labels.NewRequirement(k, op.op, sets.List(sets.New(vals...)))
		if err != nil {
			return nil, fmt.Errorf("term %q: %w", t, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("term %q is not has(k), !has(k), k == 'v', k != 'v', k in {...}, k not in {...} or all()", t)
}

func unquote(v string) (string, error) {
	if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'' || v[0] == '"' && v[len(v)-1] == '"') {
		return v[1 : len(v)-1], nil
	}
	return "", fmt.Errorf("value %s must be quoted, e.g. 'a'", v)
}
