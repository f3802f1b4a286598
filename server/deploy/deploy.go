// Package deploy applies the add-on manifests compiled into iks
// (package manifests) to the cluster, in the spirit of k3s's pkg/deploy
// but small: each manifest is rendered with the cluster's values and its
// objects are applied with server-side apply (field manager "iks") once
// the apiserver is ready, again at every start, so that a restart repairs
// drift and an upgraded binary rolls out its new manifests. A manifest
// named in Disabled is not applied, and the objects iks created from it
// on an earlier start (those carrying ManifestLabel) are deleted.
//
// Fields iks does not set (a Deployment's replicas, which the replica
// controller owns, or labels a user adds) are left alone; fields it sets
// are taken back on the next start. To run a customised add-on, disable
// iks's and deploy your own.
package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/manifests"
)

// FieldManager is the server-side apply field manager of iks's manifests.
const FieldManager = kubeapply.FieldManager

// applyTimeout bounds how long start-up retries a manifest that fails.
const applyTimeout = 90 * time.Second

// Config of the deployer.
type Config struct {
	Kubeconfig string // admin
	Values     manifests.Values
	// Disabled names manifests not to deploy (validated by config).
	Disabled []string
}

// Deployer is the component that applies the manifests.
type Deployer struct {
	cfg      Config
	log      *slog.Logger
	rendered map[string][]*unstructured.Unstructured
}

// New returns the deployer.
func New(cfg Config, log *slog.Logger) *Deployer {
	return &Deployer{cfg: cfg, log: log.With("component", "deploy")}
}

// Name implements component.Component.
func (d *Deployer) Name() string { return "deploy" }

// Init renders every manifest, so a bad value fails before anything runs.
func (d *Deployer) Init(context.Context) error {
	d.rendered = map[string][]*unstructured.Unstructured{}
	for _, name := range manifests.Names() {
		data, err := manifests.Render(name, d.cfg.Values)
		if err != nil {
			return err
		}
		objs, err := decode(name, data)
		if err != nil {
			return err
		}
		d.rendered[name] = objs
	}
	return nil
}

// Start applies the enabled manifests and removes the disabled ones,
// retrying transient failures for up to applyTimeout.
func (d *Deployer) Start(ctx context.Context) error {
	cfg, err := kubeutil.RESTConfig(d.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	for _, name := range manifests.Names() {
		var last error
		err := kubeutil.Poll(ctx, time.Second, func(ctx context.Context) (bool, error) {
			// A fresh mapper each try: a CRD from an earlier manifest may
			// have just been established.
			groups, err := restmapper.GetAPIGroupResources(dc)
			if err != nil {
				last = fmt.Errorf("discover API resources: %w", err)
				return false, nil
			}
			c := &client{dyn: dyn, mapper: restmapper.NewDiscoveryRESTMapper(groups)}
			if slices.Contains(d.cfg.Disabled, name) {
				last = d.remove(ctx, c, name)
			} else {
				last = d.apply(ctx, c, name)
			}
			return last == nil, nil
		})
		if err != nil {
			return fmt.Errorf("manifest %s: %w (last error: %w)", name, err, last)
		}
	}
	return nil
}

// Stop implements component.Component; nothing runs after Start.
func (d *Deployer) Stop(context.Context) error { return nil }

func (d *Deployer) apply(ctx context.Context, c *client, name string) error {
	t0 := time.Now()
	for _, u := range d.rendered[name] {
		if err := c.apply(ctx, u); err != nil {
			return err
		}
	}
	d.log.Info("manifest applied", "manifest", name, "objects", len(d.rendered[name]),
		"took", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// remove deletes, in reverse order, the objects of a disabled manifest
// that iks created (they carry ManifestLabel=name); an object of the same
// name that someone else made is kept.
func (d *Deployer) remove(ctx context.Context, c *client, name string) error {
	objs := d.rendered[name]
	deleted := 0
	for i := len(objs) - 1; i >= 0; i-- {
		ok, err := c.deleteOwned(ctx, objs[i], name)
		if err != nil {
			return err
		}
		if ok {
			d.log.Info("deleted object of disabled manifest", "manifest", name, "object", describe(objs[i]))
			deleted++
		}
	}
	d.log.Info("manifest disabled", "manifest", name, "deleted", deleted)
	return nil
}

// client applies and deletes unstructured objects.
type client struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func (c *client) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(u), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

func (c *client) apply(ctx context.Context, u *unstructured.Unstructured) error {
	r, err := c.resource(u)
	if err != nil {
		return err
	}
	// Force: iks owns the fields it sets, also against a user's edits.
	if _, err := r.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply %s: %w", describe(u), err)
	}
	return nil
}

// deleteOwned deletes the live object named like u when it carries
// ManifestLabel=name, and reports whether it did.
func (c *client) deleteOwned(ctx context.Context, u *unstructured.Unstructured, name string) (bool, error) {
	r, err := c.resource(u)
	if meta.IsNoMatchError(err) {
		return false, nil // its type is gone, and so is the object
	}
	if err != nil {
		return false, err
	}
	live, err := r.Get(ctx, u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %s: %w", describe(u), err)
	}
	if live.GetLabels()[ManifestLabel] != name {
		return false, nil
	}
	uid := live.GetUID()
	prop := metav1.DeletePropagationBackground
	err = r.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &prop})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", describe(u), err)
	}
	return true, nil
}
