package lb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/server/netctl"
)

// subnetsKey is the work-queue key that re-reads the PortableSubnets.
const subnetsKey = "\x00subnets"

// ReasonInvalidSubnet is the Warning event of a PortableSubnet not used.
const ReasonInvalidSubnet = "InvalidPortableSubnet"

// resourceClient installs the PortableSubnet CRD and returns the dynamic
// client serving it; clients for tests (no kubeconfig) have the CRD
// assumed installed, or no dynamic client and then no resources.
func (c *Controller) resourceClient(ctx context.Context) (dynamic.Interface, error) {
	dyn := c.cfg.Clients.Dynamic()
	if c.cfg.Clients.Kubeconfig() == "" || dyn == nil {
		return dyn, nil
	}
	ext, err := netctl.APIExtensionsClient(c.cfg.Clients.Config())
	if err != nil {
		return nil, err
	}
	if err := netctl.EnsureCRD(ctx, ext, PortableSubnetCRD(c.cfg.ClusterCIDR, c.cfg.ServiceCIDR)); err != nil {
		return nil, err
	}
	return dyn, nil
}

// watchResources watches PortableSubnets through the shared informers.
func (c *Controller) watchResources() (cache.InformerSynced, error) {
	inf := c.cfg.Clients.DynamicInformers().ForResource(lbpool.GVR)
	kick := func(any) { c.queue.Add(subnetsKey) }
	if err := c.regs.Add(inf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: kick, DeleteFunc: kick,
		UpdateFunc: func(_, n any) { kick(n) }}); err != nil {
		return nil, fmt.Errorf("watch PortableSubnets: %w", err)
	}
	c.resources = inf.Lister()
	c.cfg.Clients.Start()
	return inf.Informer().HasSynced, nil
}

// resync recomputes the pools from the flags and the PortableSubnet
// resources (oldest first; one overlapping an earlier subnet, or invalid,
// is left out with a Warning event); when they changed it republishes the
// pools, re-places them and revisits every Service.
func (c *Controller) resync(ctx context.Context) {
	var named []lbpool.NamedSubnet
	objs := map[string]*unstructured.Unstructured{}
	if c.resources != nil {
		list, _ := c.resources.List(everything())
		var us []*unstructured.Unstructured
		for _, o := range list {
			if u, ok := o.(*unstructured.Unstructured); ok {
				us = append(us, u)
			}
		}
		slices.SortFunc(us, func(a, b *unstructured.Unstructured) int {
			if d := a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time); d != 0 {
				return d
			}
			return strings.Compare(a.GetName(), b.GetName())
		})
		for _, u := range us {
			s, err := lbpool.FromUnstructured(u)
			if err == nil && lbpool.Overlapping(s.Prefix, c.cfg.ClusterCIDR, c.cfg.ServiceCIDR) {
				err = fmt.Errorf("PortableSubnet %s: %s overlaps the pod or service range: use a subnet outside %s and %s", u.GetName(), s.Prefix, c.cfg.ClusterCIDR, c.cfg.ServiceCIDR)
			}
			if err != nil {
				c.refuse(u, err)
				continue
			}
			objs[u.GetName()] = u
			named = append(named, lbpool.NamedSubnet{Name: u.GetName(), Subnet: s})
		}
	}
	merged, refused := lbpool.Merge(c.cfg.Subnets, named)
	for name, err := range refused {
		c.refuse(objs[name], err)
	}
	if slices.Equal(merged, c.subnets) {
		return
	}
	if err := EnsureAPIObjects(ctx, c.cs, merged); err != nil {
		c.log.Warn("cannot publish the portable subnets, retrying", "err", err)
		c.queue.AddRateLimited(subnetsKey)
		return
	}
	added, removed := diff(c.subnets, merged)
	c.log.Info("portable subnets changed", "added", subnetStrings(added), "removed", subnetStrings(removed))
	c.subnets = merged
	c.alloc.SetSubnets(merged)
	c.forcePlace = true
	c.queue.Add(placementKey)
	for _, s := range c.managedServices() {
		c.queue.Add(key(s))
	}
}

// refuse reports a PortableSubnet left out, once per message.
func (c *Controller) refuse(u *unstructured.Unstructured, err error) {
	k := "\x00psn/" + u.GetName()
	if c.warned[k] == err.Error() {
		return
	}
	c.warned[k] = err.Error()
	c.recorder.Event(u, corev1.EventTypeWarning, ReasonInvalidSubnet, err.Error())
	c.log.Warn("PortableSubnet not used", "name", u.GetName(), "err", err)
}

func diff(old, cur []lbpool.Subnet) (added, removed []lbpool.Subnet) {
	for _, s := range cur {
		if !slices.Contains(old, s) {
			added = append(added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(cur, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// SetSubnets replaces the pools; allocations of IPs no longer in them are
// dropped (their Services get a new IP on their next sync).
func (a *Allocator) SetSubnets(subnets []lbpool.Subnet) {
	a.subnets = subnets
	for ip, k := range a.byIP {
		if _, ok := a.serviceSubnet(ip); !ok {
			delete(a.byIP, ip)
			delete(a.byKey, k)
		}
	}
}
