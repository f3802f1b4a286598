package netpol

import "k8s.io/apimachinery/pkg/labels"

// index finds the endpoints a Selector matches without testing every
// endpoint: by namespace first (a Kubernetes selector without a
// namespaceSelector stays in its policy's namespace), by named port for
// named-port sets.
type index struct {
	byNS     map[string][]*Endpoint
	nsLabels map[string]labels.Set
	byPort   map[string][]*Endpoint // named port -> endpoints having it
}

func newIndex(eps []*Endpoint) *index {
	ix := &index{byNS: map[string][]*Endpoint{}, nsLabels: map[string]labels.Set{}, byPort: map[string][]*Endpoint{}}
	for _, e := range eps {
		ix.byNS[e.Namespace] = append(ix.byNS[e.Namespace], e)
		ix.nsLabels[e.Namespace] = e.NamespaceLabels
		seen := map[string]bool{}
		for _, p := range e.Ports {
			if !seen[p.Name] {
				seen[p.Name] = true
				ix.byPort[p.Name] = append(ix.byPort[p.Name], e)
			}
		}
	}
	return ix
}

// each calls fn for every endpoint s matches.
func (ix *index) each(s *Selector, fn func(*Endpoint)) {
	visit := func(eps []*Endpoint) {
		for _, e := range eps {
			if s.Pods == nil || s.Pods.Matches(podView{e}) {
				fn(e)
			}
		}
	}
	if s.Namespace != "" {
		if s.Namespaces == nil || s.Namespaces.Matches(nsView{s.Namespace, ix.nsLabels[s.Namespace]}) {
			visit(ix.byNS[s.Namespace])
		}
		return
	}
	for ns, eps := range ix.byNS {
		if s.Namespaces == nil || s.Namespaces.Matches(nsView{ns, ix.nsLabels[ns]}) {
			visit(eps)
		}
	}
}
