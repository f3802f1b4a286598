// Package watch feeds the iks Ingress ALB: it watches Ingresses,
// IngressClasses, Services, EndpointSlices, the Secrets the table reads
// (only those: see secrets.go) and the ALB ConfigMaps through client-go
// informers, rebuilds the routing table on
// every change and hands it to the proxy (an atomic swap, never a
// reload), reports bad objects as Warning Events and writes the ALB's IP
// into the status of the Ingresses it serves.
package watch

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/alb/route"
)

// ConfigMaps IKS reads in kube-system.
const (
	ConfigNamespace        = "kube-system"
	ControllerConfig       = "ibm-k8s-controller-config"
	TCPServices            = "tcp-services"
	UDPServices            = "udp-services"
	AnnotationIngressClass = "kubernetes.io/ingress.class"
	annotationDefaultClass = "ingressclass.kubernetes.io/is-default-class"
)

// Config says which Ingresses this ALB serves and where it publishes.
type Config struct {
	Class string // IngressClass name, e.g. public-iks-k8s-nginx
	// PublishService is namespace/name of the ALB's Service, whose
	// LoadBalancer IP goes into the Ingresses' status.
	PublishService string
	// DefaultCertSecret is namespace/name of the default certificate.
	DefaultCertSecret string
	ReservedPorts     []int
	// SSLPassthrough is --enable-ssl-passthrough: ssl-passthrough
	// annotations take effect (else they get a Warning).
	SSLPassthrough bool
}

// Sink receives each new routing table.
type Sink interface{ Swap(*route.Table) }

// Watcher is the informer-driven table builder.
type Watcher struct {
	cfg     Config
	cs      kubernetes.Interface
	sink    Sink
	log     *slog.Logger
	events  *eventLog
	trigger chan struct{}
	ing     cache.SharedIndexInformer
	classes cache.SharedIndexInformer
	svcs    cache.SharedIndexInformer
	slices  cache.SharedIndexInformer
	secrets *secrets
	cms     cache.SharedIndexInformer
	synced  chan struct{}
	// limiters keep limit-rps budgets across tables.
	limiters route.Limiters
	// Rebuilds counts the tables built (for metrics).
	Rebuilds atomic.Int64
}

// New returns a watcher; Run starts it.
func New(cfg Config, cs kubernetes.Interface, sink Sink, log *slog.Logger) *Watcher {
	f := informers.NewSharedInformerFactory(cs, 0)
	kf := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ConfigNamespace))
	w := &Watcher{cfg: cfg, cs: cs, sink: sink, log: log, trigger: make(chan struct{}, 1), synced: make(chan struct{}),
		ing: f.Networking().V1().Ingresses().Informer(), classes: f.Networking().V1().IngressClasses().Informer(),
		svcs: f.Core().V1().Services().Informer(), slices: f.Discovery().V1().EndpointSlices().Informer(),
		cms: kf.Core().V1().ConfigMaps().Informer()}
	w.secrets = newSecrets(cs, log, w.kick)
	w.events = newEventLog(cs, log)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.kick() },
		UpdateFunc: func(any, any) { w.kick() },
		DeleteFunc: func(any) { w.kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{w.ing, w.classes, w.svcs, w.slices, w.cms} {
		_, _ = inf.AddEventHandler(h)
	}
	return w
}

// Synced is closed once the first table is installed.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

func (w *Watcher) kick() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.events.stop()
	defer w.secrets.stopAll()
	infs := []cache.SharedIndexInformer{w.ing, w.classes, w.svcs, w.slices, w.cms}
	var syncs []cache.InformerSynced
	for _, inf := range infs {
		go inf.Run(ctx.Done())
		syncs = append(syncs, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return fmt.Errorf("ALB informers did not sync: %w", ctx.Err())
	}
	first := true
	for {
		t0 := time.Now()
		n := w.rebuild(ctx)
		w.Rebuilds.Add(1)
		w.log.Debug("routing table swapped", "rules", n, "took", time.Since(t0))
		if first {
			close(w.synced)
			first = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.trigger:
		}
	}
}

func (w *Watcher) rebuild(ctx context.Context) int {
	ings := w.selected()
	data := func(name string) map[string]string {
		if cm := get[*corev1.ConfigMap](w.cms, ConfigNamespace, name); cm != nil {
			return maps.Clone(cm.Data)
		}
		return nil
	}
	global, gprobs := parseGlobal(data(ControllerConfig))
	in := route.Input{
		Ingresses: ings,
		Service:   func(ns, name string) *corev1.Service { return get[*corev1.Service](w.svcs, ns, name) },
		Slices:    w.slicesOf,
		Secret:    w.secrets.get,
		Global:    global, TCP: data(TCPServices), UDP: data(UDPServices), ReservedPorts: w.cfg.ReservedPorts,
		Limiters: &w.limiters, SSLPassthrough: w.cfg.SSLPassthrough,
	}
	// Built again when it read a Secret not watched yet (now listed).
	var t *route.Table
	var probs []route.Problem
	synced := true
	for again := true; again; {
		w.secrets.begin()
		in.DefaultCert = w.defaultCert()
		t, probs = route.Build(in)
		again, synced = w.secrets.end(ctx)
		again = again && synced && ctx.Err() == nil
	}
	w.sink.Swap(t)
	if synced {
		// Else a Secret reported missing may only be not listed yet: its
		// informer's first list kicks the next rebuild, which reports.
		w.events.report(append(gprobs, probs...), ings)
	}
	w.publish(ctx, ings)
	return t.Rules
}

// selected returns the Ingresses of this ALB's class.
func (w *Watcher) selected() []*networkingv1.Ingress {
	isDefault := false
	if ic := get[*networkingv1.IngressClass](w.classes, "", w.cfg.Class); ic != nil {
		isDefault = ic.Annotations[annotationDefaultClass] == "true"
	}
	var out []*networkingv1.Ingress
	for _, o := range w.ing.GetStore().List() {
		ing := o.(*networkingv1.Ingress)
		cls, annotated := ing.Annotations[AnnotationIngressClass]
		switch {
		case ing.Spec.IngressClassName != nil:
			if *ing.Spec.IngressClassName == w.cfg.Class {
				out = append(out, ing)
			}
		case annotated:
			if cls == w.cfg.Class {
				out = append(out, ing)
			}
		case isDefault:
			out = append(out, ing)
		}
	}
	return out
}

func (w *Watcher) slicesOf(ns, svc string) []*discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc})
	var out []*discoveryv1.EndpointSlice
	objs, _ := w.slices.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		if sel.Matches(labels.Set(es.Labels)) {
			out = append(out, es)
		}
	}
	return out
}

func (w *Watcher) defaultCert() *tls.Certificate {
	ns, name, ok := strings.Cut(w.cfg.DefaultCertSecret, "/")
	if !ok {
		return nil
	}
	s := w.secrets.get(ns, name)
	if s == nil {
		if !w.secrets.watching(ns, name) {
			return nil // first read: end lists it and the table is built again
		}
		w.log.Warn("default certificate secret not found", "secret", w.cfg.DefaultCertSecret)
		return nil
	}
	c, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		w.log.Warn("default certificate secret is not a certificate and key", "secret", w.cfg.DefaultCertSecret, "err", err)
		return nil
	}
	return &c
}

func get[T any](inf cache.SharedIndexInformer, ns, name string) T {
	var zero T
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	o, ok, err := inf.GetStore().GetByKey(key)
	if err != nil || !ok {
		return zero
	}
	v, _ := o.(T)
	return v
}
