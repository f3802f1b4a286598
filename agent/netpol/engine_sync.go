package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// sources are the informers' caches the engine reads.
type sources struct {
	pods            corelisters.PodLister
	namespaces      corelisters.NamespaceLister
	netpols         networkinglisters.NetworkPolicyLister
	serviceAccounts corelisters.ServiceAccountLister
	calico          func() *CalicoObjects
}

// snapshot is what one full sync reads.
type snapshot struct {
	pods            []*corev1.Pod
	namespaces      []*corev1.Namespace
	netpols         []*networkingv1.NetworkPolicy
	serviceAccounts []*corev1.ServiceAccount
	calico          *CalicoObjects
}

func (s *sources) snapshot() (*snapshot, error) {
	var sn snapshot
	var errs [4]error
	sn.pods, errs[0] = s.pods.List(labels.Everything())
	sn.namespaces, errs[1] = s.namespaces.List(labels.Everything())
	sn.netpols, errs[2] = s.netpols.List(labels.Everything())
	sn.serviceAccounts, errs[3] = s.serviceAccounts.List(labels.Everything())
	sn.calico = s.calico()
	return &sn, errors.Join(errs[:]...)
}

// endpoint is the pod's endpoint now (nil: none).
func (s *sources) endpoint(key string) (*Endpoint, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, err
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var nsLabels map[string]string
	if n, err := s.namespaces.Get(ns); err == nil {
		nsLabels = n.Labels
	}
	e, ok := FromPod(pod, nsLabels)
	if !ok {
		return nil, nil
	}
	if e.ServiceAccount != "" {
		if sa, err := s.serviceAccounts.ServiceAccounts(ns).Get(e.ServiceAccount); err == nil {
			e.SALabels = sa.Labels
		}
	}
	return e, nil
}

func (e *Engine) podChanged(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	e.chg.Lock()
	if err != nil {
		e.chg.full = true
	} else {
		if e.chg.dirty == nil {
			e.chg.dirty = map[string]bool{}
		}
		e.chg.dirty[key] = true
	}
	e.chg.Unlock()
	e.kick()
}

func (e *Engine) changed() {
	e.chg.Lock()
	e.chg.full = true
	e.chg.Unlock()
	e.kick()
}

func (e *Engine) takeChanges() (full bool, dirty map[string]bool) {
	e.chg.Lock()
	defer e.chg.Unlock()
	full, dirty = e.chg.full, e.chg.dirty
	e.chg.full, e.chg.dirty = false, nil
	return full, dirty
}

// sync programs the table: only the changed pods' set elements when
// nothing but pods changed since the last success, else everything.
func (e *Engine) sync(ctx context.Context, src *sources) (err error) {
	start := time.Now()
	full, dirty := e.takeChanges()
	defer func() {
		if err != nil { // the next sync starts over
			e.prog, e.eps, e.byIP = nil, nil, nil
		}
	}()
	var prog *Program
	var changes []PodChange
	if !full && e.prog != nil {
		if changes, err = e.podChanges(src, dirty); err != nil {
			return err
		}
		if changes == nil {
			full = true // an address moved between pods: recompile
		}
	}
	var npols int
	if full || e.prog == nil {
		sn, err := src.snapshot()
		if err != nil {
			return err
		}
		bad := func(err error) { e.log.Warn("policy ignored", "error", err) }
		policies, _ := Translate(nil, nil, sn.netpols, bad)
		nsLabels := map[string]map[string]string{}
		for _, ns := range sn.namespaces {
			nsLabels[ns.Name] = ns.Labels
		}
		endpoints, contested := translatePods(sn.pods, nsLabels)
		e.contested = contested
		AttachServiceAccounts(endpoints, sn.serviceAccounts)
		calicoPols, heps, sets := TranslateCalico(sn.calico, bad)
		policies = append(policies, calicoPols...)
		npols = len(policies)
		prog = CompileInput(&Input{Policies: policies, Endpoints: endpoints, HostEndpoints: heps, NetworkSets: sets,
			Node: e.cfg.NodeName, VethPrefix: e.cfg.VethPrefix})
		e.eps, e.byIP = map[string]*Endpoint{}, map[string]string{}
		for _, ep := range endpoints {
			e.eps[ep.Key()], e.byIP[ep.IP.String()] = ep, ep.Key()
		}
	} else {
		prog = UpdatePods(e.prog, changes)
		for _, c := range changes {
			if c.Old != nil {
				delete(e.eps, c.Old.Key())
				delete(e.byIP, c.Old.IP.String())
			}
		}
		for _, c := range changes {
			if c.New != nil {
				e.eps[c.New.Key()], e.byIP[c.New.IP.String()] = c.New, c.New.Key()
			}
		}
	}
	compiled := time.Since(start)
	st, err := e.writer.Apply(ctx, prog)
	if err != nil {
		return err
	}
	e.prog = prog
	level := slog.LevelDebug // incremental changes follow every pod change
	if st.Full || st.Chains > 0 {
		level = slog.LevelInfo
	}
	if st.Full || st.Chains+st.Added+st.Deleted > 0 {
		e.log.Log(ctx, level, "network policy programmed", "policies", npols, "pods", len(e.eps), "full", st.Full,
			"incremental", !full, "chains", st.Chains, "added", st.Added, "deleted", st.Deleted,
			"compile", compiled.Round(time.Microsecond), "total", time.Since(start).Round(time.Microsecond))
	}
	return nil
}

// podChanges reads the dirty pods' endpoints; nil (and no error) when
// an address would belong to two pods (Translate's rule then decides).
func (e *Engine) podChanges(src *sources, dirty map[string]bool) ([]PodChange, error) {
	changes := []PodChange{}
	for key := range dirty {
		now, err := src.endpoint(key)
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", key, err)
		}
		old := e.eps[key]
		if now != nil {
			if owner, ok := e.byIP[now.IP.String()]; ok && owner != key && !dirty[owner] {
				return nil, nil
			}
			if e.contested[now.IP.String()] {
				return nil, nil
			}
		}
		if old != nil && e.contested[old.IP.String()] {
			return nil, nil // the pod that lost the address may take it now
		}
		if old != nil || now != nil {
			changes = append(changes, PodChange{Old: old, New: now})
		}
	}
	// Two dirty pods trading or sharing an address: recompile.
	seen := map[string]bool{}
	for _, c := range changes {
		if c.New != nil {
			if seen[c.New.IP.String()] {
				return nil, nil
			}
			seen[c.New.IP.String()] = true
		}
	}
	return changes, nil
}
