package route

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// pathKey identifies a host and path across Ingresses.
func pathKey(host, pathType, path string) string {
	if path == "" {
		path = "/"
	}
	return strings.ToLower(host) + "|" + pathType + "|" + path
}

// canary attaches a canary Ingress's paths to the main Ingress routes of
// the same host, path and path type. As in ingress-nginx the canary's
// other annotations are not used (the main Ingress's apply), except its
// session affinity.
func (b *builder) canary(ing *networkingv1.Ingress, seen map[string]*Route) {
	id := ing.Namespace + "/" + ing.Name
	// All annotations are checked (snippets refused, typos named), though
	// only the canary and affinity ones are used.
	opts, _, probs := parseOptions(ing.Annotations, b.in.Global)
	bad := func(k, v, want string) {
		probs = append(probs, fmt.Sprintf("annotation %s%s=%q is not valid: %s", AnnotationPrefix, k, v, want))
	}
	spec := parseCanary(ing.Annotations, bad)
	aff := opts.Affinity
	for _, p := range probs {
		b.warn(ing, "BadAnnotation", "%s", p)
	}
	if ing.Spec.DefaultBackend != nil {
		b.warn(ing, "CanaryDefaultBackend", "spec.defaultBackend of canary Ingress %s is ignored: a canary only splits the paths of a main Ingress", id)
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			pt := PathImplementationSpecific
			if p.PathType != nil {
				pt = string(*p.PathType)
			}
			main := seen[pathKey(rule.Host, pt, p.Path)]
			switch {
			case main == nil:
				b.warn(ing, "CanaryWithoutMain", "canary Ingress: no main Ingress serves host %q path %q (%s), so this path is not served: create the main Ingress first or fix the host and path", rule.Host, p.Path, pt)
				continue
			case main.Canary != nil:
				b.warn(ing, "DuplicateCanary", "host %q path %q already has canary Ingress %s (one canary per path): remove one of them", rule.Host, p.Path, main.Canary.Ingress)
				continue
			case p.Backend.Service == nil:
				b.warn(ing, "BadBackend", "path %q of host %q has no service backend (resource backends are not supported): set backend.service", p.Path, rule.Host)
				continue
			}
			c := *spec
			c.Ingress, c.Affinity = id, aff
			c.Backend = b.backend(ing, &p.Backend, main.Backend.Protocol)
			main.Canary = &c
		}
	}
}
