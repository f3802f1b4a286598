package route

import (
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// options completes an Ingress's options with what needs more than its
// annotations: limiters kept across tables, the default-backend Service
// and the auth-tls CA Secret.
func (b *builder) options(ing *networkingv1.Ingress, o *Options) {
	id := ing.Namespace + "/" + ing.Name
	bad := func(k, v, want string) {
		b.warn(ing, "BadAnnotation", "annotation %s%s=%q is not valid: %s", AnnotationPrefix, k, v, want)
	}
	mult := o.burstMult
	if mult == 0 {
		mult = DefaultBurstMultiplier
	}
	limit := func(kind string, perSecond float64, n int) {
		key := id + "|" + kind
		b.limits[key] = true
		o.Limits = append(o.Limits, b.in.Limiters.get(key, perSecond, float64(n*mult)))
	}
	if o.limitRPS > 0 {
		limit("rps", float64(o.limitRPS), o.limitRPS)
	}
	if o.limitRPM > 0 {
		limit("rpm", float64(o.limitRPM)/60, o.limitRPM)
	}
	if v, ok := ing.Annotations[AnnotationPrefix+"default-backend"]; ok {
		v = strings.TrimSpace(v)
		svc := b.in.Service(ing.Namespace, v)
		switch {
		case v == "" || strings.Contains(v, "/"):
			bad("default-backend", v, "use the name of a Service in the Ingress's namespace")
		case svc == nil:
			bad("default-backend", v, fmt.Sprintf("Service %s/%s does not exist: create it or remove the annotation", ing.Namespace, v))
		case len(svc.Spec.Ports) == 0:
			bad("default-backend", v, fmt.Sprintf("Service %s/%s has no port", ing.Namespace, v))
		default:
			p := svc.Spec.Ports[0]
			port := p.Name
			if port == "" {
				port = strconv.Itoa(int(p.Port))
			}
			o.ErrorBackend = b.serviceBackend(ing.Namespace, v, port, ProtoHTTP, func(msg string) { b.warn(ing, "BadBackend", "default-backend: %s", msg) })
		}
	}
	o.ClientAuth = parseClientAuth(ing.Annotations, ing.Namespace, b.in.Secret, bad)
}

// passthrough registers the hosts of a ssl-passthrough Ingress: TLS
// connections for them go to the backend of the rule's first path,
// undecrypted.
func (b *builder) passthrough(ing *networkingv1.Ingress, proto string) {
	v := strings.TrimSpace(ing.Annotations[AnnotationPrefix+"ssl-passthrough"])
	on, err := strconv.ParseBool(v)
	switch {
	case err != nil:
		b.warn(ing, "BadAnnotation", "annotation %sssl-passthrough=%q is not valid: use \"true\" or \"false\"", AnnotationPrefix, v)
		return
	case !on:
		return
	case !b.in.SSLPassthrough:
		b.warn(ing, "SSLPassthroughDisabled", "annotation %sssl-passthrough has no effect: this ALB runs without --enable-ssl-passthrough (as ingress-nginx, passthrough must be enabled on the ALB); HTTPS is terminated by the ALB", AnnotationPrefix)
		return
	}
	for _, rule := range ing.Spec.Rules {
		if rule.Host == "" || rule.HTTP == nil || len(rule.HTTP.Paths) == 0 || rule.HTTP.Paths[0].Backend.Service == nil {
			b.warn(ing, "BadPassthrough", "ssl-passthrough needs rules with a host and a service backend: rule %q is not passed through", rule.Host)
			continue
		}
		h := b.hostEntry(rule.Host)
		if h.passthrough != nil {
			b.warn(ing, "DuplicatePassthrough", "host %q is already passed through to %s: remove ssl-passthrough from one Ingress", rule.Host, h.passthrough.Name)
			continue
		}
		h.passthrough = b.backend(ing, &rule.HTTP.Paths[0].Backend, proto)
	}
}
