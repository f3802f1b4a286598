// Package netctl is the server side of the iks pod network API: it
// installs the network CustomResourceDefinitions (one file per CRD, each
// through EnsureCRD), publishes the cluster's address plan in the
// kube-system/iks-cluster-network ConfigMap and sets up who may change
// what: RBAC for nodes and a ValidatingAdmissionPolicy that lets a node
// touch only its own IPAMBlocks.
package netctl

import (
	"context"
	"fmt"
	"reflect"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// EnsureCRD creates crd, or updates its spec and labels when they differ
// from the installed one, then waits until the API server serves it
// (condition Established) or ctx ends.
func EnsureCRD(ctx context.Context, client apiext.Interface, crd *apiextv1.CustomResourceDefinition) error {
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	have, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CustomResourceDefinition %s: %w", crd.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get CustomResourceDefinition %s: %w", crd.Name, err)
	default:
		// Compare against what the server would store: defaults applied
		// by the API server (e.g. conversion strategy) are kept.
		want := have.DeepCopy()
		want.Spec.Group, want.Spec.Names, want.Spec.Scope = crd.Spec.Group, crd.Spec.Names, crd.Spec.Scope
		want.Spec.Versions = crd.Spec.Versions
		if want.Labels == nil {
			want.Labels = map[string]string{}
		}
		for k, v := range crd.Labels {
			want.Labels[k] = v
		}
		if !reflect.DeepEqual(want.Spec, have.Spec) || !reflect.DeepEqual(want.Labels, have.Labels) {
			if _, err := crds.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update CustomResourceDefinition %s: %w", crd.Name, err)
			}
		}
	}
	var last string
	err = kubeutil.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		c, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, cond := range c.Status.Conditions {
			switch cond.Type {
			case apiextv1.Established:
				if cond.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			case apiextv1.NamesAccepted:
				if cond.Status == apiextv1.ConditionFalse {
					last = cond.Reason + ": " + cond.Message
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CustomResourceDefinition %s not established (last: %s): %w", crd.Name, last, err)
	}
	return nil
}

// APIExtensionsClient returns a client for CustomResourceDefinitions.
func APIExtensionsClient(rc *rest.Config) (apiext.Interface, error) {
	c, err := apiext.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("apiextensions client: %w", err)
	}
	return c, nil
}
