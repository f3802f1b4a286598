package apiserver

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes"
	kubeoptions "k8s.io/kubernetes/pkg/kubeapiserver/options"

	"github.com/iks-dev/iks/agent/netpol"
)

// CalicoPlugin is the admission plugin, built into iks's kube-apiserver,
// that refuses a Calico object (projectcalico.org) the agents could not
// enforce, on create and on update:
//   - one whose translation fails (the agents' own code: a selector that
//     lexes but does not parse, a tier iks lacks, ...): the agents would
//     leave it out and keep enforcing the rest without it, silently;
//   - a HostEndpoint whose spec.node names no Node: it would be enforced
//     nowhere (Calico accepts it; IKS's documentation writes spec.node
//     by hand).
//
// CRD validation and ValidatingAdmissionPolicy can neither run the
// selector parser nor look a Node up, hence a plugin; it runs in every
// server's apiserver, so it needs no webhook, no serving certificate and
// no failure policy.
const CalicoPlugin = "IKSCalicoPolicy"

var hostEndpoints = schema.GroupResource{Group: netpol.CalicoGroup, Resource: "hostendpoints"}

// registerAdmission adds iks's plugins to the apiserver's admission chain,
// enabled by default, before the validating webhooks and policies (as
// upstream orders its own validating plugins).
func registerAdmission(o *kubeoptions.AdmissionOptions) {
	g := o.GenericAdmission
	g.Plugins.Register(CalicoPlugin, func(io.Reader) (admission.Interface, error) {
		return &calicoAdmission{Handler: admission.NewHandler(admission.Create, admission.Update)}, nil
	})
	at := slices.Index(g.RecommendedPluginOrder, "ValidatingAdmissionPolicy")
	if at < 0 {
		at = len(g.RecommendedPluginOrder)
	}
	g.RecommendedPluginOrder = slices.Insert(slices.Clone(g.RecommendedPluginOrder), at, CalicoPlugin)
}

type calicoAdmission struct {
	*admission.Handler
	nodes kubernetes.Interface
}

var (
	_ admission.ValidationInterface     = (*calicoAdmission)(nil)
	_ admission.InitializationValidator = (*calicoAdmission)(nil)
)

// SetExternalKubeClientSet implements initializer.WantsExternalKubeClientSet.
func (p *calicoAdmission) SetExternalKubeClientSet(cs kubernetes.Interface) { p.nodes = cs }

// ValidateInitialization implements admission.InitializationValidator.
func (p *calicoAdmission) ValidateInitialization() error {
	if p.nodes == nil {
		return fmt.Errorf("%s: no client to look Nodes up", CalicoPlugin)
	}
	return nil
}

// Validate refuses what the agents would leave out, and a HostEndpoint
// created on (or moved to) a node that does not exist. An update that
// keeps spec.node passes that check, so that the endpoint of a node being
// deleted can still be changed.
func (p *calicoAdmission) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	gr := a.GetResource().GroupResource()
	if gr.Group != netpol.CalicoGroup || a.GetSubresource() != "" {
		return nil
	}
	u, ok := a.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	if err := netpol.ValidateCalico(gr, u); err != nil {
		return admission.NewForbidden(a, fmt.Errorf("%w (the agents would leave this object out; fix that field)", err))
	}
	if gr != hostEndpoints {
		return nil
	}
	node, err := specNode(a.GetObject())
	if err != nil || node == "" {
		return err
	}
	if a.GetOperation() == admission.Update {
		if old, err := specNode(a.GetOldObject()); err == nil && old == node {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = p.nodes.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return admission.NewForbidden(a, fmt.Errorf("spec.node: node %q does not exist: a host endpoint is enforced only on the node it names; "+
			"set spec.node to one of the nodes `kubectl get nodes` lists, or create the host endpoint once that node has joined", node))
	default:
		return apierrors.NewInternalError(fmt.Errorf("spec.node: looking node %q up: %w", node, err))
	}
}

// specNode reads spec.node of a HostEndpoint (an unstructured custom
// resource in the apiserver).
func specNode(obj runtime.Object) (string, error) {
	u, ok := obj.(runtime.Unstructured)
	if !ok || obj == nil {
		return "", nil
	}
	node, _, err := unstructured.NestedString(u.UnstructuredContent(), "spec", "node")
	if err != nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("spec.node: %v", err))
	}
	return node, nil
}
