package netpol

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Labels Calico adds to what its selectors see of a pod and a namespace.
const (
	LabelNamespace      = "projectcalico.org/namespace"
	LabelOrchestrator   = "projectcalico.org/orchestrator"
	LabelServiceAccount = "projectcalico.org/serviceaccount"
	LabelName           = "projectcalico.org/name"
	saPrefix            = "pcsa."
)

// podView is a pod's labels as selectors see them: its own, plus
// Calico's namespace, orchestrator and service account labels.
type podView struct{ e *Endpoint }

func (v podView) Lookup(k string) (string, bool) {
	if val, ok := v.e.Labels[k]; ok {
		return val, true
	}
	switch {
	case k == LabelNamespace:
		return v.e.Namespace, true
	case k == LabelOrchestrator:
		return "k8s", true
	case k == LabelServiceAccount:
		return v.e.ServiceAccount, v.e.ServiceAccount != ""
	case strings.HasPrefix(k, saPrefix):
		val, ok := v.e.SALabels[k[len(saPrefix):]]
		return val, ok
	}
	return "", false
}
func (v podView) Has(k string) bool   { _, ok := v.Lookup(k); return ok }
func (v podView) Get(k string) string { val, _ := v.Lookup(k); return val }

// nsView is a namespace's labels plus projectcalico.org/name.
type nsView struct {
	name string
	l    labels.Set
}

func (v nsView) Lookup(k string) (string, bool) {
	if val, ok := v.l[k]; ok {
		return val, true
	}
	if k == LabelName && v.name != "" {
		return v.name, true
	}
	return "", false
}
func (v nsView) Has(k string) bool   { _, ok := v.Lookup(k); return ok }
func (v nsView) Get(k string) string { val, _ := v.Lookup(k); return val }

// prefixView shows the labels under prefix with it removed (pcsa.KEY as
// KEY for a serviceAccountSelector).
type prefixView struct {
	l      labels.Labels
	prefix string
}

func (v prefixView) Lookup(k string) (string, bool) { return v.l.Lookup(v.prefix + k) }
func (v prefixView) Has(k string) bool              { return v.l.Has(v.prefix + k) }
func (v prefixView) Get(k string) string            { return v.l.Get(v.prefix + k) }

// saMatcher applies a selector to a pod's service account labels.
type saMatcher struct{ sel LabelMatcher }

func (m saMatcher) Matches(l labels.Labels) bool { return m.sel.Matches(prefixView{l, saPrefix}) }
func (m saMatcher) String() string               { return "serviceaccount(" + m.sel.String() + ")" }

// allOf matches when every matcher does.
type allOf []LabelMatcher

func (a allOf) Matches(l labels.Labels) bool {
	for _, m := range a {
		if !m.Matches(l) {
			return false
		}
	}
	return true
}

func (a allOf) String() string {
	parts := make([]string, len(a))
	for i, m := range a {
		parts[i] = "(" + m.String() + ")"
	}
	return strings.Join(parts, " && ")
}

// and joins matchers, leaving out nil ones; nil when none remain.
func and(ms ...LabelMatcher) LabelMatcher {
	var out allOf
	for _, m := range ms {
		if m != nil {
			out = append(out, m)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}
