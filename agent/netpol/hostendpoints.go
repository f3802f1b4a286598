package netpol

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// IKS's host endpoint labels and the names of a node's host endpoints.
const (
	LabelRole      = "ibm.role"
	RolePrivate    = "worker_private"
	RolePublic     = "worker_public"
	privateSuffix  = "-worker-private"
	publicSuffix   = "-worker-public"
	hepManager     = "iks-agent"
	labelManagedBy = "app.kubernetes.io/managed-by"
	// hepResync re-applies the host endpoints (repairs an edit or a
	// deletion) even without a Node change.
	hepResync = 5 * time.Minute
)

// hostEndpoints keeps the node's HostEndpoints as IKS has them:
// NODE-worker-private on the node IP's interface and, when the node has a
// public side, NODE-worker-public on the public IP's; both carry the
// node's labels and ibm.role, and are owned by the Node (deleted with
// it).
type hostEndpoints struct {
	cfg Config
	log *slog.Logger
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

// privateDefault is the default policy that keeps the private side open:
// host endpoints are created only once it exists, so that a node is
// never closed for the moment between its host endpoints and the
// server's default policies at first start.
const privateDefault = "allow-all-private-default"

func (h *hostEndpoints) run(ctx context.Context) {
	waited := time.Now()
	if err := kubeutil.Poll(ctx, time.Second, func(ctx context.Context) (bool, error) {
		_, err := h.dyn.Resource(GVRGlobalNetworkPolicy).Get(ctx, privateDefault, metav1.GetOptions{})
		if err != nil && time.Since(waited) > 30*time.Second {
			h.log.Warn("host endpoints wait for the default policy "+privateDefault, "error", err)
			waited = time.Now()
		}
		return err == nil, nil
	}); err != nil {
		return
	}
	f := informers.NewSharedInformerFactoryWithOptions(h.cs, hepResync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", h.cfg.NodeName).String()
	}))
	inf := f.Core().V1().Nodes().Informer()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() },
	}); err != nil {
		h.log.Error("host endpoints: watch the node", "error", err)
		return
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	backoff := time.Second
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retry.C:
		}
		obj, ok, err := inf.GetStore().GetByKey(h.cfg.NodeName)
		if err != nil || !ok {
			continue // the Node appears with an Add
		}
		if err := h.sync(ctx, obj.(*corev1.Node)); err != nil {
			h.log.Error("host endpoints not in step with the node; retrying", "error", err, "in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
	}
}

// Desired returns the node's host endpoints as objects to apply, and the
// names of those the node no longer has (its public side is gone).
func (h *hostEndpoints) desired(node *corev1.Node) (apply []*unstructured.Unstructured, gone []string) {
	sides := []struct {
		suffix, role string
		ip           netip.Addr
	}{{privateSuffix, RolePrivate, h.cfg.NodeIP}, {publicSuffix, RolePublic, h.cfg.PublicIP}}
	privateIf, _ := interfaceOf(h.cfg.NodeIP)
	for _, s := range sides {
		name := node.Name + s.suffix
		if !s.ip.IsValid() {
			gone = append(gone, name)
			continue
		}
		labels := map[string]any{}
		for k, v := range node.Labels {
			labels[k] = v
		}
		labels[LabelRole] = s.role
		labels[labelManagedBy] = hepManager
		spec := map[string]any{"node": node.Name, "expectedIPs": []any{s.ip.String()}}
		switch ifname, err := interfaceOf(s.ip); {
		case err == nil && s.role == RolePublic && ifname == privateIf:
			// One interface carries both sides: its policy is the private
			// side's; the public host endpoint only names the address.
			h.log.Info("public side on the private interface: public host endpoint policy is not enforced", "hostendpoint", name, "interface", ifname)
		case err == nil:
			spec["interfaceName"] = ifname
		default:
			h.log.Warn("host endpoint without an interface: its policy is not enforced", "hostendpoint", name, "error", err)
		}
		apply = append(apply, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": CalicoGroup + "/" + CalicoVersion, "kind": "HostEndpoint",
			"metadata": map[string]any{"name": name, "labels": labels,
				"ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "Node", "name": node.Name, "uid": string(node.UID)}}},
			"spec": spec,
		}})
	}
	return apply, gone
}

func (h *hostEndpoints) sync(ctx context.Context, node *corev1.Node) error {
	apply, gone := h.desired(node)
	r := h.dyn.Resource(GVRHostEndpoint)
	for _, u := range apply {
		if _, err := r.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: hepManager, Force: true}); err != nil {
			return fmt.Errorf("apply hostendpoint %s: %w", u.GetName(), err)
		}
	}
	for _, name := range gone {
		live, err := r.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get hostendpoint %s: %w", name, err)
		}
		if live.GetLabels()[labelManagedBy] != hepManager {
			continue // someone else's
		}
		if err := r.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete hostendpoint %s (the node has no such side now): %w", name, err)
		}
		h.log.Info("host endpoint deleted: the node has no such side now", "hostendpoint", name)
	}
	return nil
}

// interfaceOf names the interface holding ip.
func interfaceOf(ip netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
					return i.Name, nil
				}
			}
		}
	}
	return "", fmt.Errorf("no interface holds %s", ip)
}
