package netctl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextfake "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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
	// The simple fake has no server-side apply: answer the apply.
	applied := 0
	ext.PrependReactor("patch", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetPatchType() != types.ApplyPatchType {
			return true, nil, fmt.Errorf("patch type %s, want server-side apply", a.(k8stesting.PatchAction).GetPatchType())
		}
		applied++
		return true, IPAMBlockCRD(), nil
	})
	gets := 0
	ext.PrependReactor("get", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		if gets < 3 {
			return true, IPAMBlockCRD(), nil // not yet established
		}
		crd := IPAMBlockCRD()
		crd.Status.Conditions = []apiextv1.CustomResourceDefinitionCondition{{Type: apiextv1.Established, Status: apiextv1.ConditionTrue}}
		return true, crd, nil
	})
	if err := EnsureCRD(context.Background(), ext, IPAMBlockCRD()); err != nil {
		t.Fatal(err)
	}
	if gets < 3 || applied != 1 {
		t.Errorf("EnsureCRD returned after %d applies and %d gets; want 1 apply, then gets until established", applied, gets)
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
	rvs := func() []string {
		p, err1 := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, PolicyNodeOwnBlocks, metav1.GetOptions{})
		b, err2 := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, PolicyNodeOwnBlocks, metav1.GetOptions{})
		cm, err3 := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, netapi.ClusterNetworkName, metav1.GetOptions{})
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return []string{p.ResourceVersion, b.ResourceVersion, cm.ResourceVersion}
	}
	var first []string
	for i := range 2 {
		if err := EnsureAccess(ctx, cs); err != nil {
			t.Fatal(err)
		}
		if err := EnsureClusterNetwork(ctx, cs, nw); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = rvs()
		}
	}
	if second := rvs(); !slices.Equal(first, second) {
		t.Errorf("second run rewrote unchanged objects: resource versions %v -> %v", first, second)
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
