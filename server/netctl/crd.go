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
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// EnsureCRD applies crd, then waits until the API server serves it
// (condition Established) or ctx ends.
func EnsureCRD(ctx context.Context, client apiext.Interface, crd *apiextv1.CustomResourceDefinition) error {
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	if _, err := kubeapply.Apply(ctx, crds, crd); err != nil {
		return err
	}
	var last string
	err := kubeutil.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
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
