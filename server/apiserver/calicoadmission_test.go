package apiserver

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes/fake"
	kubeoptions "k8s.io/kubernetes/pkg/kubeapiserver/options"
)

func hep(node string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
		"metadata": map[string]any{"name": "h"},
		"spec":     map[string]any{"interfaceName": "eth0"},
	}}
	if node != "" {
		u.Object["spec"].(map[string]any)["node"] = node
	}
	return u
}

func TestCalicoAdmission(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	p := &calicoAdmission{Handler: admission.NewHandler(admission.Create, admission.Update)}
	if err := p.ValidateInitialization(); err == nil {
		t.Error("a plugin without a client passed its initialization check")
	}
	p.SetExternalKubeClientSet(cs)
	if err := p.ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "hostendpoints"}
	gvk := schema.GroupVersionKind{Group: "projectcalico.org", Version: "v3", Kind: "HostEndpoint"}
	attrs := func(op admission.Operation, obj, old runtime.Object, res schema.GroupVersionResource, sub string) admission.Attributes {
		return admission.NewAttributesRecord(obj, old, gvk, "", "h", res, sub, op, nil, false, nil)
	}
	for _, c := range []struct {
		name    string
		a       admission.Attributes
		refused bool
	}{
		{"create on a node that exists", attrs(admission.Create, hep("w1"), nil, gvr, ""), false},
		{"create on an unknown node", attrs(admission.Create, hep("nope"), nil, gvr, ""), true},
		{"create without spec.node", attrs(admission.Create, hep(""), nil, gvr, ""), true},
		{"update moving to an unknown node", attrs(admission.Update, hep("nope"), hep("w1"), gvr, ""), true},
		{"update keeping a node now gone", attrs(admission.Update, hep("gone"), hep("gone"), gvr, ""), false},
		{"update moving to a node that exists", attrs(admission.Update, hep("w1"), hep("gone"), gvr, ""), false},
		{"status subresource", attrs(admission.Update, hep("nope"), hep("w1"), gvr, "status"), false},
		{"another resource", attrs(admission.Create, hep("nope"), nil, schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "globalnetworksets"}, ""), false},
	} {
		err := p.Validate(context.Background(), c.a, nil)
		switch {
		case c.refused && err == nil:
			t.Errorf("%s: admitted", c.name)
		case !c.refused && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.refused && !apierrors.IsForbidden(err):
			t.Errorf("%s: refusal is no Forbidden: %v", c.name, err)
		case c.refused && strings.Contains(err.Error(), "nope") && (!strings.Contains(err.Error(), `spec.node: node "nope" does not exist`) || !strings.Contains(err.Error(), "kubectl get nodes")):
			t.Errorf("%s: refusal does not name the field, the value and the fix: %v", c.name, err)
		}
	}
	// Policies: what the agents' translation refuses, refused here.
	gnp := schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "globalnetworkpolicies"}
	pol := func(spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
			"metadata": map[string]any{"name": "p"}, "spec": spec}}
	}
	for _, c := range []struct {
		name string
		spec map[string]any
		want string // "" admits
	}{
		{"a good policy", map[string]any{"selector": "app == 'web' && has(tier)", "ingress": []any{map[string]any{"action": "Allow"}}}, ""},
		{"a selector that lexes but does not parse", map[string]any{"selector": "app == 'web' &&"}, "spec.selector"},
		{"a rule selector that does not parse", map[string]any{"ingress": []any{map[string]any{"action": "Allow",
			"source": map[string]any{"selector": "in {'a'}"}}}}, "spec.ingress[0]"},
		{"a tier iks lacks", map[string]any{"tier": "security"}, `spec.tier "security"`},
	} {
		err := p.Validate(context.Background(), attrs(admission.Create, pol(c.spec), nil, gnp, ""), nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want a refusal naming %s", c.name, err, c.want)
		}
	}
	if p.Handles(admission.Delete) || !p.Handles(admission.Create) || !p.Handles(admission.Update) {
		t.Error("the plugin must check creates and updates only")
	}
}

func TestRegisterAdmission(t *testing.T) {
	o := kubeoptions.NewAdmissionOptions()
	registerAdmission(o)
	g := o.GenericAdmission
	if errs := g.Validate(); len(errs) != 0 {
		t.Fatalf("admission options with iks's plugin: %v", errs)
	}
	order := g.RecommendedPluginOrder
	at, vap := -1, -1
	for i, n := range order {
		switch n {
		case CalicoPlugin:
			at = i
		case "ValidatingAdmissionPolicy":
			vap = i
		}
	}
	if at < 0 || vap < 0 || at > vap {
		t.Errorf("plugin order %v: want %s before ValidatingAdmissionPolicy", order, CalicoPlugin)
	}
	if o.GenericAdmission.DefaultOffPlugins.Has(CalicoPlugin) {
		t.Errorf("%s is off by default", CalicoPlugin)
	}
}
