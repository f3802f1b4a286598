// This file serves external BGP peers: it installs the BGPPeer CRD, lets
// nodes read BGPPeers (RBAC) and reports a BGPPeer whose node selector does
// not parse with a Warning event InvalidBGPPeer on the object.

package netctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/iks-dev/iks/internal/bgppeer"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// ReasonInvalidBGPPeer is the event reason of a BGPPeer nodes ignore.
const ReasonInvalidBGPPeer = "InvalidBGPPeer"

// RoleNodeBGPPeers lets nodes (group system:nodes) read BGPPeers.
const RoleNodeBGPPeers = "iks-node-bgppeers"

// BGPPeers is the server component for external BGP peers.
type BGPPeers struct {
	kubeconfig string
	log        *slog.Logger

	cancel      context.CancelFunc
	factory     dynamicinformer.DynamicSharedInformerFactory
	broadcaster record.EventBroadcaster
	mu          sync.Mutex
	reported    map[string]string // name -> "uid/generation" already reported
}

// NewBGPPeers returns the component; kubeconfig is the admin's.
func NewBGPPeers(kubeconfig string, log *slog.Logger) *BGPPeers {
	return &BGPPeers{kubeconfig: kubeconfig, log: log.With("component", "bgppeers"), reported: map[string]string{}}
}

// Name implements component.Component.
func (b *BGPPeers) Name() string { return "bgppeers" }

// Init implements component.Component.
func (b *BGPPeers) Init(context.Context) error { return nil }

// Start installs the CRD and the RBAC, then watches BGPPeers. A failure
// after the event broadcaster started stops it and the informer again.
func (b *BGPPeers) Start(ctx context.Context) (err error) {
	rc, err := kubeutil.RESTConfig(b.kubeconfig)
	if err != nil {
		return err
	}
	ax, err := apiext.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	if err := installBGPPeerCRD(ctx, ax); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := ensureNodeBGPPeerRBAC(ctx, cs); err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Stop(context.WithoutCancel(ctx)))
		}
	}()
	b.broadcaster = record.NewBroadcaster()
	b.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	rec := b.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "iks-bgppeers"})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	f := dynamicinformer.NewDynamicSharedInformerFactory(dc, 10*time.Minute)
	b.factory = f
	inf := f.ForResource(bgppeer.GVR).Informer()
	check := func(o any) {
		if u, ok := o.(*unstructured.Unstructured); ok {
			b.check(rec, u)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, n any) { check(n) },
		DeleteFunc: func(o any) {
			if u, ok := o.(*unstructured.Unstructured); ok {
				b.mu.Lock()
				delete(b.reported, u.GetName())
				b.mu.Unlock()
			}
		}}); err != nil {
		return fmt.Errorf("watch BGPPeers: %w", err)
	}
	f.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("list BGPPeers (%s) did not complete before start-up ended: %w; check the apiserver log for the CRD %s", bgppeer.GVR.GroupResource(), context.Cause(ctx), bgppeer.GVR.GroupResource())
	}
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
	if b.cancel != nil {
		b.cancel()
	}
	if b.factory != nil {
		b.factory.Shutdown()
		b.factory = nil
	}
	if b.broadcaster != nil {
		b.broadcaster.Shutdown()
		b.broadcaster = nil
	}
	return nil
}

// ensureNodeBGPPeerRBAC lets every node get/list/watch BGPPeers (the
// routing agent peers with those that select its node).
func ensureNodeBGPPeerRBAC(ctx context.Context, cs kubernetes.Interface) error {
	labels := map[string]string{"app.kubernetes.io/managed-by": "iks"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: RoleNodeBGPPeers, Labels: labels},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{bgppeer.Group}, Resources: []string{bgppeer.Resource},
			Verbs: []string{"get", "list", "watch"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: RoleNodeBGPPeers, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RoleNodeBGPPeers},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"}},
	}
	roles := cs.RbacV1().ClusterRoles()
	if have, err := roles.Get(ctx, role.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get ClusterRole %s: %w", role.Name, err)
	} else if !reflect.DeepEqual(have.Rules, role.Rules) {
		have.Rules = role.Rules
		if _, err := roles.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ClusterRole %s: %w", role.Name, err)
		}
	}
	crbs := cs.RbacV1().ClusterRoleBindings()
	if have, err := crbs.Get(ctx, binding.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := crbs.Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get ClusterRoleBinding %s: %w", binding.Name, err)
	} else if !reflect.DeepEqual(have.Subjects, binding.Subjects) || have.RoleRef != binding.RoleRef {
		if err := crbs.Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace ClusterRoleBinding %s: %w", binding.Name, err)
		}
		if _, err := crbs.Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
		}
	}
	return nil
}
