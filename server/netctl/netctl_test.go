package netctl

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextfake "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iks-dev/iks/internal/netapi"
)

func TestIPAMBlockCRD(t *testing.T) {
	crd := IPAMBlockCRD()
	if crd.Name != "ipamblocks.network.iks.io" || crd.Spec.Scope != apiextv1.ClusterScoped {
		t.Fatalf("name/scope = %s/%s", crd.Name, crd.Spec.Scope)
	}
	v := crd.Spec.Versions[0]
	if v.Name != "v1" || v.Subresources.Status == nil || len(v.SelectableFields) != 1 || v.SelectableFields[0].JSONPath != ".spec.node" {
		t.Errorf("version %+v: want v1 with status and spec.node selectable", v)
	}
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"cidr", "node"} {
		rules := spec.Properties[f].XValidations
		if len(rules) == 0 || rules[0].Rule != "self == oldSelf" {
			t.Errorf("spec.%s is not immutable: %+v", f, rules)
		}
	}
	if len(v.AdditionalPrinterColumns) < 4 {
		t.Errorf("printer columns %+v", v.AdditionalPrinterColumns)
	}
}

func TestEnsureCRDWaitsForEstablished(t *testing.T) {
	ext := apiextfake.NewSimpleClientset() //nolint:staticcheck // NewClientset needs the CRD type in its schema
	gets := 0
	ext.PrependReactor("get", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		if gets < 3 {
			return false, nil, nil // first the existence check, then not yet established
		}
		crd := IPAMBlockCRD()
		crd.Status.Conditions = []apiextv1.CustomResourceDefinitionCondition{{Type: apiextv1.Established, Status: apiextv1.ConditionTrue}}
		return true, crd, nil
	})
	if err := EnsureCRD(context.Background(), ext, IPAMBlockCRD()); err != nil {
		t.Fatal(err)
	}
	if gets < 3 {
		t.Errorf("EnsureCRD returned before the CRD was established (%d gets)", gets)
	}
}

func TestOwnBlocksPolicy(t *testing.T) {
	p, b := ownBlocksPolicy()
	if b.Spec.PolicyName != p.Name || len(b.Spec.ValidationActions) != 1 || b.Spec.ValidationActions[0] != "Deny" {
		t.Errorf("binding %+v", b.Spec)
	}
	rr := p.Spec.MatchConstraints.ResourceRules[0]
	if !strings.Contains(strings.Join(rr.Resources, ","), "ipamblocks/status") || len(rr.Operations) != 3 {
		t.Errorf("rules %+v: want create/update/delete of ipamblocks and their status", rr)
	}
	if !strings.Contains(p.Spec.MatchConditions[0].Expression, "system:node:") ||
		!strings.Contains(p.Spec.Variables[0].Expression, "substring(12)") {
		t.Errorf("policy does not key on the node user name: %+v %+v", p.Spec.MatchConditions, p.Spec.Variables)
	}
}

func TestEnsureAccessAndConfigMapAreIdempotent(t *testing.T) {
	cs := fake.NewClientset()
	ctx := context.Background()
	nw := netapi.ClusterNetwork{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"),
		ClusterDomain: "cluster.local", BlockSize: 26}
	first := 0
	for i := range 2 {
		if i == 1 {
			first = len(cs.Actions())
		}
		if err := EnsureAccess(ctx, cs); err != nil {
			t.Fatal(err)
		}
		if err := EnsureClusterNetwork(ctx, cs, nw); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range cs.Actions()[first:] {
		if a.GetVerb() != "get" {
			t.Errorf("second run changed something: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	role, err := cs.RbacV1().Roles("kube-system").Get(ctx, RoleClusterNetwork, metav1.GetOptions{})
	if err != nil || len(role.Rules) != 1 || strings.Join(role.Rules[0].ResourceNames, ",") != netapi.ClusterNetworkName ||
		strings.Join(role.Rules[0].Verbs, ",") != "get" {
		t.Errorf("ConfigMap role %+v, %v: want get on %s only", role, err, netapi.ClusterNetworkName)
	}
	// A changed ConfigMap is put back.
	cm, _ := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, netapi.ClusterNetworkName, metav1.GetOptions{})
	cm.Data["blockSize"] = "20"
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureClusterNetwork(ctx, cs, nw); err != nil {
		t.Fatal(err)
	}
	cm, _ = cs.CoreV1().ConfigMaps("kube-system").Get(ctx, netapi.ClusterNetworkName, metav1.GetOptions{})
	if got, err := netapi.ClusterNetworkFromConfigMap(cm); err != nil || got != nw {
		t.Errorf("ConfigMap = %+v, %v; want %+v", got, err, nw)
	}
}
