// Package kubeapply is the one way iks writes the cluster objects it owns
// (RBAC, CustomResourceDefinitions, admission policies, ConfigMaps, the
// server token's Secret, add-on manifests): server-side apply under one
// field manager, FieldManager, forced, so iks owns exactly the fields it
// sets and a user's extra labels or annotations survive. No package keeps
// its own get/create/compare/update loop.
package kubeapply

import (
	"context"
	"encoding/json"
	"fmt"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/iks-dev/iks/internal/api"
)

// FieldManager is the server-side apply field manager of every object iks
// writes as its own.
const FieldManager = "iks"

// ManagedByLabel marks the objects iks applies, with value "iks", so
// `kubectl get clusterroles -l app.kubernetes.io/managed-by=iks` lists
// what the product grants.
const ManagedByLabel = api.ManagedByLabel

// scheme knows the kinds iks applies: the client-go types and CRDs.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextv1.AddToScheme(s))
	return s
}()

// Client is the part of a typed client (for example
// cs.RbacV1().ClusterRoles()) Apply needs.
type Client[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// Object is a typed Kubernetes object (a pointer to a client-go or CRD type).
type Object interface {
	runtime.Object
	metav1.Object
}

// Apply server-side applies obj through c and returns the object as
// stored. obj is not changed; it is labelled app.kubernetes.io/managed-by=iks.
func Apply[T any](ctx context.Context, c Client[T], obj Object) (T, error) {
	var zero T
	data, what, err := Encode(obj)
	if err != nil {
		return zero, err
	}
	got, err := c.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)})
	if err != nil {
		return zero, fmt.Errorf("apply %s: %w", what, err)
	}
	return got, nil
}

// Replace applies obj; when the API server refuses it because a field
// that cannot change differs (a binding's roleRef, a Secret's type), it
// deletes the stored object and applies obj again. Only for objects iks
// alone owns.
func Replace[T any](ctx context.Context, c Client[T], obj Object) (T, error) {
	got, err := Apply(ctx, c, obj)
	if err == nil || !apierrors.IsInvalid(err) {
		return got, err
	}
	if derr := c.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
		return got, fmt.Errorf("%w; replacing it: %w", err, derr)
	}
	return Apply(ctx, c, obj)
}

// Encode returns obj as an apply configuration (JSON with apiVersion and
// kind, without status and creationTimestamp, labelled managed-by=iks) and
// a name for messages ("ClusterRole iks-node-ipam").
func Encode(obj Object) ([]byte, string, error) {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, obj.GetName(), fmt.Errorf("apply %T %s: unknown kind: %w", obj, obj.GetName(), err)
	}
	gvk := gvks[0]
	what := gvk.Kind + " " + obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		what = gvk.Kind + " " + ns + "/" + obj.GetName()
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, what, fmt.Errorf("apply %s: %w", what, err)
	}
	m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	delete(m, "status")
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		m["metadata"] = md
	}
	delete(md, "creationTimestamp")
	labels, _ := md["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels[ManagedByLabel] = "iks"
	md["labels"] = labels
	data, err := json.Marshal(m)
	if err != nil {
		return nil, what, fmt.Errorf("apply %s: %w", what, err)
	}
	return data, what, nil
}

// Describe names obj for messages: "ClusterRole iks-node-ipam".
func Describe(obj Object) string {
	_, what, _ := Encode(obj)
	return what
}

func ptr[T any](v T) *T { return &v }
