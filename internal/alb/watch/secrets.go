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
// connection to the apiserver.
//
// The builder asks for Secrets through get, which records the names; end
// then starts informers for the new names (waiting for their first list,
// so a Secret that exists is never reported missing), stops those of
// names no longer read, and says whether the table must be built again.
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
	s.mu.Unlock()
	if si == nil {
		return nil
	}
	return get[*corev1.Secret](si.inf, ns, name)
}

// end makes the watched set the recorded one and reports whether a new
// Secret was added (the build that read it saw nil and must be redone).
func (s *secrets) end(ctx context.Context) bool {
	s.mu.Lock()
	var started []cache.InformerSynced
	for key := range s.used {
		if s.m[key] != nil {
			continue
		}
		si := s.start(key)
		s.m[key] = si
		started = append(started, si.inf.HasSynced)
	}
	for key, si := range s.m {
		if !s.used[key] {
			close(si.stop)
			delete(s.m, key)
		}
	}
	s.mu.Unlock()
	if len(started) == 0 {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, secretSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wctx.Done(), started...) {
		s.log.Warn("referenced Secrets not listed yet; the table is built without them until they are", "timeout", secretSyncTimeout)
	}
	return true
}

// start runs an informer for the one Secret key (namespace/name).
func (s *secrets) start(key string) *secretInformer {
	ns, name, _ := cutKey(key)
	inf := coreinformers.NewFilteredSecretInformer(s.cs, ns, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
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
	return s.m[ns+"/"+name] != nil
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
