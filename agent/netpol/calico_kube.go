package netpol

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// The Calico resources' API resources.
var (
	GVRGlobalNetworkPolicy = calicoGVR("globalnetworkpolicies")
	GVRNetworkPolicy       = calicoGVR("networkpolicies")
	GVRHostEndpoint        = calicoGVR("hostendpoints")
	GVRGlobalNetworkSet    = calicoGVR("globalnetworksets")
	GVRNetworkSet          = calicoGVR("networksets")
	// CalicoResources lists them in CalicoObjects' field order.
	CalicoResources = []schema.GroupVersionResource{GVRGlobalNetworkPolicy, GVRNetworkPolicy, GVRHostEndpoint, GVRGlobalNetworkSet, GVRNetworkSet}
)

func calicoGVR(r string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: CalicoGroup, Version: CalicoVersion, Resource: r}
}

// CalicoObjects are the Calico objects of the cluster, by resource in
// CalicoResources' order.
type CalicoObjects [5][]*unstructured.Unstructured

// CalicoServed reports whether the apiserver serves all the Calico
// resources (the CRDs are established).
func CalicoServed(dc discovery.DiscoveryInterface) (bool, error) {
	rl, err := dc.ServerResourcesForGroupVersion(CalicoGroup + "/" + CalicoVersion)
	if err != nil {
		return false, err
	}
	have := map[string]bool{}
	for _, r := range rl.APIResources {
		have[r.Name] = true
	}
	for _, gvr := range CalicoResources {
		if !have[gvr.Resource] {
			return false, nil
		}
	}
	return true, nil
}

// ListCalico lists every Calico object (for `iks policy show`).
func ListCalico(ctx context.Context, dyn dynamic.Interface) (*CalicoObjects, error) {
	var out CalicoObjects
	for i, gvr := range CalicoResources {
		l, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s.%s: %w", gvr.Resource, gvr.Group, err)
		}
		for j := range l.Items {
			out[i] = append(out[i], &l.Items[j])
		}
	}
	return &out, nil
}

func specOf(u *unstructured.Unstructured, into any) error {
	spec, ok := u.Object["spec"]
	if !ok {
		return nil
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// TranslateCalico maps the Calico objects into the model; an object that
// does not translate is reported and left out.
func TranslateCalico(objs *CalicoObjects, bad func(error)) ([]*Policy, []*HostEndpoint, []*NetworkSet) {
	var pols []*Policy
	var heps []*HostEndpoint
	var sets []*NetworkSet
	for i, gvr := range CalicoResources {
		for _, u := range objs[i] {
			p, h, s, err := translateOne(gvr, u)
			switch {
			case err != nil:
				bad(fmt.Errorf("%s %s: %w", gvr.Resource, describeObj(u), err))
			case p != nil:
				pols = append(pols, p)
			case h != nil:
				heps = append(heps, h)
			case s != nil:
				sets = append(sets, s)
			}
		}
	}
	return pols, heps, sets
}

// translateOne maps one object of resource gvr (one of CalicoResources).
func translateOne(gvr schema.GroupVersionResource, u *unstructured.Unstructured) (*Policy, *HostEndpoint, *NetworkSet, error) {
	switch gvr {
	case GVRGlobalNetworkPolicy, GVRNetworkPolicy:
		var spec CalicoPolicySpec
		if err := specOf(u, &spec); err != nil {
			return nil, nil, nil, err
		}
		p, err := FromCalicoPolicy(u.GetNamespace(), u.GetName(), &spec)
		return p, nil, nil, err
	case GVRHostEndpoint:
		var spec CalicoHostEndpointSpec
		if err := specOf(u, &spec); err != nil {
			return nil, nil, nil, err
		}
		h, err := FromHostEndpoint(u.GetName(), u.GetLabels(), &spec)
		return nil, h, nil, err
	default:
		var spec CalicoNetworkSetSpec
		if err := specOf(u, &spec); err != nil {
			return nil, nil, nil, err
		}
		s, err := FromNetworkSet(u.GetNamespace(), u.GetName(), u.GetLabels(), &spec)
		return nil, nil, s, err
	}
}

func describeObj(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}

// AttachServiceAccounts gives each endpoint its service account's labels.
func AttachServiceAccounts(eps []*Endpoint, sas []*corev1.ServiceAccount) {
	byKey := make(map[string]map[string]string, len(sas))
	for _, sa := range sas {
		byKey[sa.Namespace+"/"+sa.Name] = sa.Labels
	}
	for _, e := range eps {
		if e.ServiceAccount != "" {
			e.SALabels = byKey[e.Namespace+"/"+e.ServiceAccount]
		}
	}
}
