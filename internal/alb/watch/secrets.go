package watch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// secretSyncTimeout bounds how long a rebuild waits for the first list of
// a newly referenced Secret (a Secret that does not exist lists empty at
// once; only an unreachable apiserver makes this wait).
const secretSyncTimeout = 10 * time.Second

// perNamespace is the most Secrets of one namespace watched one by one.
const perNamespace = 4

// secrets watches exactly the Secrets the routing table reads: the TLS
// Secrets of the served Ingresses' spec.tls, their auth-tls-secret CAs
// and the default certificate, each with its own informer listing and
// watching that one name (namespace + fieldSelector metadata.name).
//
// Why not one informer for all Secrets (as ingress-nginx): it holds a
// copy of every Secret of the cluster (service account tokens, Helm
// releases, other applications' credentials) in the ALB's memory and
// wakes it for every Secret change anywhere. Why not per-namespace
// informers: a namespace with an Ingress still holds unrelated Secrets.
// Why not Gets on demand: a renewed certificate would only be seen on
// the next unrelated change. Per-name watches keep renewals as prompt
// as any other change (the watch event triggers a rebuild) and cost one
// watch stream per referenced Secret, multiplexed on the ALB's HTTP/2
// connection to the apiserver. A namespace where the table reads more
// than perNamespace Secrets gets one informer for its Secrets instead
// (key "ns/"), so the number of watches stays bounded by the namespaces
// with TLS Ingresses, and their first lists by the client's rate limit.
//
// The builder asks for Secrets through get, which records the names; end
// then starts informers for the new names (waiting for their first list,
// so a Secret that exists is never reported missing), stops those of
// names no longer read, and says whether the table must be built again
// and whether its missing Secrets are known to be missing.
type secrets struct {
	cs   kubernetes.Interface
	log  *slog.Logger
	kick func()

	mu   sync.Mutex
	m    map[string]*secretInformer // by namespace/name
	used map[string]bool
}

type secretInformer struct {
	inf  cache.SharedIndexInformer
	stop chan struct{}
}

func newSecrets(cs kubernetes.Interface, log *slog.Logger, kick func()) *secrets {
	return &secrets{cs: cs, log: log, kick: kick, m: map[string]*secretInformer{}, used: map[string]bool{}}
}

// begin starts recording the Secrets a build reads.
func (s *secrets) begin() {
	s.mu.Lock()
	s.used = map[string]bool{}
	s.mu.Unlock()
}

// get returns the Secret ns/name if it is watched and exists, and records
// that the build read it.
func (s *secrets) get(ns, name string) *corev1.Secret {
	key := ns + "/" + name
	s.mu.Lock()
	s.used[key] = true
	si := s.m[key]
	if si == nil {
		si = s.m[ns+"/"]
	}
	s.mu.Unlock()
	if si == nil {
		return nil
	}
	return get[*corev1.Secret](si.inf, ns, name)
}

// plan returns the informer keys for the Secrets read: "ns/name" each,
// or "ns/" for a namespace with more than perNamespace of them.
func plan(used map[string]bool) map[string]bool {
	byNS := map[string][]string{}
	for key := range used {
		ns, _, _ := cutKey(key)
		byNS[ns] = append(byNS[ns], key)
	}
	out := map[string]bool{}
	for ns, keys := range byNS {
		if len(keys) > perNamespace {
			out[ns+"/"] = true
			continue
		}
		for _, k := range keys {
			out[k] = true
		}
	}
	return out
}

// end makes the watched set the one the recorded reads need. added: a
// new informer was started (the build that read it saw nil and must be
// redone); synced: all of them have listed (else a missing Secret may
// only be not listed yet).
func (s *secrets) end(ctx context.Context) (added, synced bool) {
	s.mu.Lock()
	want := plan(s.used)
	var started []cache.InformerSynced
	for key := range want {
		if s.m[key] != nil {
			continue
		}
		si := s.start(key)
		s.m[key] = si
		started = append(started, si.inf.HasSynced)
	}
	for key, si := range s.m {
		if !want[key] {
			close(si.stop)
			delete(s.m, key)
		}
	}
	s.mu.Unlock()
	if len(started) == 0 {
		return false, true
	}
	wctx, cancel := context.WithTimeout(ctx, secretSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wctx.Done(), started...) {
		s.log.Warn("referenced Secrets not listed yet; the table is built without them until they are", "timeout", secretSyncTimeout)
		return true, false
	}
	return true, true
}

// start runs an informer for key: the one Secret namespace/name, or the
// Secrets of a namespace ("namespace/").
func (s *secrets) start(key string) *secretInformer {
	ns, name, _ := cutKey(key)
	inf := coreinformers.NewFilteredSecretInformer(s.cs, ns, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		if name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}
	})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.kick() },
		UpdateFunc: func(any, any) { s.kick() },
		DeleteFunc: func(any) { s.kick() },
	}
	_, _ = inf.AddEventHandler(h)
	si := &secretInformer{inf: inf, stop: make(chan struct{})}
	go inf.Run(si.stop)
	return si
}

// watching says whether ns/name has an informer (listed, or being listed).
func (s *secrets) watching(ns, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[ns+"/"+name] != nil || s.m[ns+"/"] != nil
}

// watched returns the keys of the Secrets watched now.
func (s *secrets) watched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	return out
}

// stopAll stops every informer (the watcher ends).
func (s *secrets) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, si := range s.m {
		close(si.stop)
		delete(s.m, key)
	}
}

func cutKey(key string) (ns, name string, ok bool) {
	for i := range len(key) {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", key, false
}
