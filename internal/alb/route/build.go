package route

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Input is everything a Table is built from.
type Input struct {
	Ingresses []*networkingv1.Ingress // already filtered to this ALB's class
	Service   func(ns, name string) *corev1.Service
	Slices    func(ns, service string) []*discoveryv1.EndpointSlice
	Secret    func(ns, name string) *corev1.Secret
	// DefaultCert is served for unknown SNI names (nil: none).
	DefaultCert *tls.Certificate
	Global      Global
	// TCP and UDP are the tcp-services / udp-services ConfigMap data.
	TCP, UDP map[string]string
	// ReservedPorts are the ALB's own HTTP/HTTPS ports.
	ReservedPorts []int
	// Limiters keeps limit-rps state across tables (nil: new limiters).
	Limiters *Limiters
	// SSLPassthrough is the ALB's --enable-ssl-passthrough.
	SSLPassthrough bool
}

// Problem is one bad object or setting, reported as a Warning Event.
type Problem struct {
	// Kind, Namespace and Name name the object the Event goes to.
	Kind, Namespace, Name string
	Reason                string
	Message               string
}

// Build turns the Input into a Table and the problems found. A bad
// object never fails the build: it is left out (or served a 503) and
// reported.
func Build(in Input) (*Table, []Problem) {
	b := &builder{in: in, backends: map[string]*Backend{}, limits: map[string]bool{}, t: &Table{exact: map[string]*host{}, wildcard: map[string]*host{},
		certs: map[string]*tls.Certificate{}, wcerts: map[string]*tls.Certificate{}, DefaultCert: in.DefaultCert, AccessLog: in.Global.AccessLog}}
	ings := slices.Clone(in.Ingresses)
	slices.SortStableFunc(ings, func(a, c *networkingv1.Ingress) int {
		if d := a.CreationTimestamp.Compare(c.CreationTimestamp.Time); d != 0 {
			return d
		}
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
	seen := map[string]*Route{}
	var canaries []*networkingv1.Ingress
	for _, ing := range ings {
		if isCanary(ing.Annotations) {
			canaries = append(canaries, ing)
			continue
		}
		b.ingress(ing, seen)
	}
	for _, ing := range canaries {
		b.canary(ing, seen)
	}
	for _, h := range b.hosts() {
		slices.SortStableFunc(h.routes, func(a, c *Route) int {
			if (a.PathType == PathExact) != (c.PathType == PathExact) {
				if a.PathType == PathExact {
					return -1
				}
				return 1
			}
			return cmp.Compare(len(c.Path), len(a.Path))
		})
		b.t.Rules += len(h.routes)
	}
	b.streams("tcp", "tcp-services", in.TCP)
	b.streams("udp", "udp-services", in.UDP)
	in.Limiters.keep(b.limits)
	return b.t, b.problems
}

type builder struct {
	in       Input
	t        *Table
	backends map[string]*Backend
	problems []Problem
	limits   map[string]bool // limiter keys in use
}

func (b *builder) hosts() []*host {
	var out []*host
	for _, h := range b.t.exact {
		out = append(out, h)
	}
	for _, h := range b.t.wildcard {
		out = append(out, h)
	}
	if b.t.anyHost != nil {
		out = append(out, b.t.anyHost)
	}
	return out
}

func (b *builder) warn(ing *networkingv1.Ingress, reason, format string, args ...any) {
	b.problems = append(b.problems, Problem{Kind: "Ingress", Namespace: ing.Namespace, Name: ing.Name, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (b *builder) hostEntry(name string) *host {
	switch {
	case name == "":
		if b.t.anyHost == nil {
			b.t.anyHost = &host{}
		}
		return b.t.anyHost
	case strings.HasPrefix(name, "*."):
		k := strings.ToLower(name[2:])
		if b.t.wildcard[k] == nil {
			b.t.wildcard[k] = &host{}
		}
		return b.t.wildcard[k]
	default:
		k := strings.ToLower(name)
		if b.t.exact[k] == nil {
			b.t.exact[k] = &host{}
		}
		return b.t.exact[k]
	}
}

func (b *builder) ingress(ing *networkingv1.Ingress, seen map[string]*Route) {
	id := ing.Namespace + "/" + ing.Name
	opts, useRegex, probs := parseOptions(ing.Annotations, b.in.Global)
	for _, p := range probs {
		b.warn(ing, "BadAnnotation", "%s", p)
	}
	b.options(ing, opts)
	proto := strings.ToUpper(strings.TrimSpace(ing.Annotations[AnnotationPrefix+"backend-protocol"]))
	if proto == "" || !slices.Contains([]string{ProtoHTTP, ProtoHTTPS, ProtoGRPC, ProtoGRPCS}, proto) {
		proto = ProtoHTTP
	}
	if _, ok := ing.Annotations[AnnotationPrefix+"ssl-passthrough"]; ok {
		b.passthrough(ing, proto)
	}
	tlsHosts := b.tls(ing)
	if db := ing.Spec.DefaultBackend; db != nil {
		if b.t.Default != nil {
			b.warn(ing, "DuplicateDefaultBackend", "spec.defaultBackend ignored: Ingress %s already sets this ALB's default backend; keep one default backend per ALB", b.t.Default.Ingress)
		} else if be := b.backend(ing, db, proto); be != nil {
			b.t.Default = &Route{Ingress: id, Path: "/", PathType: PathPrefix, Backend: be, Opts: opts}
		}
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		h := b.hostEntry(rule.Host)
		if tlsHosts[strings.ToLower(rule.Host)] {
			h.tls = true
		}
		if opts.ClientAuth != nil {
			h.clientCert = true
		}
		for _, p := range rule.HTTP.Paths {
			r := &Route{Ingress: id, Host: rule.Host, Path: p.Path, Opts: opts}
			if r.Path == "" {
				r.Path = "/"
			}
			r.PathType = PathImplementationSpecific
			if p.PathType != nil {
				r.PathType = string(*p.PathType)
			}
			if useRegex || (opts.RewriteTarget != "" && r.PathType != PathExact) {
				src := r.Path
				if !useRegex {
					src = regexp.QuoteMeta(src)
				}
				re, err := regexp.Compile("(?i)^" + src)
				if err != nil {
					b.warn(ing, "BadRegex", "path %q of host %q is not a valid regular expression (%v): fix the path or drop annotation %suse-regex; the path is not served", p.Path, rule.Host, err, AnnotationPrefix)
					continue
				}
				r.Regex = re
			}
			key := pathKey(rule.Host, r.PathType, r.Path)
			if other, dup := seen[key]; dup {
				b.warn(ing, "DuplicatePath", "host %q path %q (%s) is already served by Ingress %s, which is older and wins: remove the path from one of them", rule.Host, r.Path, r.PathType, other.Ingress)
				continue
			}
			if p.Backend.Service == nil {
				b.warn(ing, "BadBackend", "path %q of host %q has no service backend (resource backends are not supported): set backend.service", r.Path, rule.Host)
				continue
			}
			r.Backend = b.backend(ing, &p.Backend, proto)
			seen[key] = r
			h.routes = append(h.routes, r)
		}
	}
}

// tls loads the certificates of spec.tls and returns the TLS hosts.
func (b *builder) tls(ing *networkingv1.Ingress) map[string]bool {
	hosts := map[string]bool{}
	for _, t := range ing.Spec.TLS {
		for _, h := range t.Hosts {
			hosts[strings.ToLower(h)] = true
		}
		if t.SecretName == "" {
			continue // default certificate
		}
		sec := b.in.Secret(ing.Namespace, t.SecretName)
		if sec == nil {
			b.warn(ing, "BadTLSSecret", "TLS secret %s/%s does not exist: create it (kubectl create secret tls %s --cert=... --key=... -n %s); the default certificate is served for %s meanwhile", ing.Namespace, t.SecretName, t.SecretName, ing.Namespace, strings.Join(t.Hosts, ", "))
			continue
		}
		cert, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			b.warn(ing, "BadTLSSecret", "TLS secret %s/%s does not hold a certificate and matching key in tls.crt/tls.key (%v): recreate it with kubectl create secret tls; the default certificate is served meanwhile", ing.Namespace, t.SecretName, err)
			continue
		}
		for _, h := range t.Hosts {
			h = strings.ToLower(h)
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				if _, taken := b.t.wcerts[rest]; !taken {
					b.t.wcerts[rest] = &cert
				}
			} else if _, taken := b.t.certs[h]; !taken {
				b.t.certs[h] = &cert
			}
		}
	}
	return hosts
}

// backend resolves a Service backend to its ready endpoints; a missing
// Service or port gives a Backend without endpoints (503) and a Warning.
func (b *builder) backend(ing *networkingv1.Ingress, ib *networkingv1.IngressBackend, proto string) *Backend {
	if ib.Service == nil {
		b.warn(ing, "BadBackend", "a backend without a service (resource backends are not supported): set backend.service")
		return nil
	}
	port := ib.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(ib.Service.Port.Number))
	}
	return b.serviceBackend(ing.Namespace, ib.Service.Name, port, proto, func(msg string) {
		b.warn(ing, "BadBackend", "%s", msg)
	})
}

func (b *builder) serviceBackend(ns, name, port, proto string, warn func(string)) *Backend {
	key := ns + "/" + name + ":" + port + "/" + proto
	if be, ok := b.backends[key]; ok {
		if be.Problem != "" {
			warn(be.Problem)
		}
		return be
	}
	be := &Backend{Name: ns + "/" + name + ":" + port, Protocol: proto}
	b.backends[key] = be
	svc := b.in.Service(ns, name)
	if svc == nil {
		be.Problem = fmt.Sprintf("service %s/%s does not exist: create it or point the Ingress at an existing Service; requests get 503 meanwhile", ns, name)
		warn(be.Problem)
		return be
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.Name == port || strconv.Itoa(int(p.Port)) == port {
			sp = p
			break
		}
	}
	if sp == nil {
		be.Problem = fmt.Sprintf("service %s/%s has no port %s: use one of its ports (%s); requests get 503 meanwhile", ns, name, port, portList(svc))
		warn(be.Problem)
		return be
	}
	seen := map[string]bool{}
	for _, es := range b.in.Slices(ns, name) {
		var target int32
		for _, p := range es.Ports {
			if p.Port != nil && ptrStr(p.Name) == sp.Name {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				hp := net.JoinHostPort(a, strconv.Itoa(int(target)))
				if !seen[hp] {
					seen[hp] = true
					be.Endpoints = append(be.Endpoints, hp)
				}
			}
		}
	}
	slices.Sort(be.Endpoints)
	be.keys = make([]string, len(be.Endpoints))
	for i, ep := range be.Endpoints {
		be.keys[i] = endpointKey(ep)
	}
	return be
}

func portList(svc *corev1.Service) string {
	var ps []string
	for _, p := range svc.Spec.Ports {
		s := strconv.Itoa(int(p.Port))
		if p.Name != "" {
			s = p.Name + "=" + s
		}
		ps = append(ps, s)
	}
	return strings.Join(ps, ", ")
}

func ptrStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
