// This file serves external BGP peers: it installs the BGPPeer CRD, lets
// nodes read BGPPeers (RBAC) and reports a BGPPeer whose node selector does
// not parse with a Warning event InvalidBGPPeer on the object.

package netctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/iks-dev/iks/internal/bgppeer"
	"github.com/iks-dev/iks/internal/kubeclients"
)

// ReasonInvalidBGPPeer is the event reason of a BGPPeer nodes ignore.
const ReasonInvalidBGPPeer = "InvalidBGPPeer"

// BGPPeers is the server component for external BGP peers.
type BGPPeers struct {
	clients *kubeclients.Clients
	log     *slog.Logger

	regs        kubeclients.Registrations
	broadcaster record.EventBroadcaster
	mu          sync.Mutex
	reported    map[string]string // name -> "uid/generation" already reported
}

// NewBGPPeers returns the component over the server's shared clients.
func NewBGPPeers(clients *kubeclients.Clients, log *slog.Logger) *BGPPeers {
	return &BGPPeers{clients: clients, log: log.With("component", "bgppeers"), reported: map[string]string{}}
}

// Name implements component.Component.
func (b *BGPPeers) Name() string { return "bgppeers" }

// Init implements component.Component.
func (b *BGPPeers) Init(context.Context) error { return nil }

// Start installs the CRD and the RBAC, then watches BGPPeers. A failure
// after the event broadcaster started stops it and the informer again.
func (b *BGPPeers) Start(ctx context.Context) (err error) {
	cs, err := b.clients.Wait(ctx)
	if err != nil {
		return err
	}
	ax, err := apiext.NewForConfig(b.clients.Config())
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	if err := installBGPPeerCRD(ctx, ax); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Stop(context.WithoutCancel(ctx)))
		}
	}()
	b.broadcaster = record.NewBroadcaster()
	b.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	rec := b.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "iks-bgppeers"})
	inf := b.clients.DynamicInformers().ForResource(bgppeer.GVR).Informer()
	check := func(o any) {
		if u, ok := o.(*unstructured.Unstructured); ok {
			b.check(rec, u)
		}
	}
	if err := b.regs.Add(inf, cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, n any) { check(n) },
		DeleteFunc: func(o any) {
			if u, ok := o.(*unstructured.Unstructured); ok {
				b.mu.Lock()
				delete(b.reported, u.GetName())
				b.mu.Unlock()
			}
		}}); err != nil {
		return fmt.Errorf("watch BGPPeers: %w", err)
	}
	// Not waited for: the controller only reports invalid peers, and a CRD
	// just served by a starting apiserver may answer 404 for a moment, which
	// costs the informer a 1 s retry that must not delay the node's start.
	b.clients.Start()
	return nil
}

// check emits InvalidBGPPeer once per generation of an invalid BGPPeer.
func (b *BGPPeers) check(rec record.EventRecorder, u *unstructured.Unstructured) {
	_, err := bgppeer.FromUnstructured(u)
	key := fmt.Sprintf("%s/%d", u.GetUID(), u.GetGeneration())
	b.mu.Lock()
	seen := b.reported[u.GetName()] == key
	if err == nil {
		delete(b.reported, u.GetName())
	} else {
		b.reported[u.GetName()] = key
	}
	b.mu.Unlock()
	if err == nil || seen {
		return
	}
	b.log.Warn("invalid BGPPeer; nodes ignore it", "bgppeer", u.GetName(), "err", err)
	rec.Eventf(u, corev1.EventTypeWarning, ReasonInvalidBGPPeer, "%v; nodes ignore this peer until it is fixed", err)
}

// Stop implements component.Component.
func (b *BGPPeers) Stop(context.Context) error {
	err := b.regs.RemoveAll()
	if b.broadcaster != nil {
		b.broadcaster.Shutdown()
		b.broadcaster = nil
	}
	return err
}
