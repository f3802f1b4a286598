package deploy

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/iks-dev/iks/manifests"
)

func TestDecodeCoreDNS(t *testing.T) {
	data, err := manifests.Render("coredns", manifests.Values{ClusterDNS: "10.43.0.10", ClusterDomain: "edge.local",
		CoreDNSImage: "iks.local/coredns:1", APIServerHost: "10.0.0.5", APIServerPort: "6443"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode("coredns", data)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, describe(o))
		if o.GetLabels()[ManifestLabel] != "coredns" {
			t.Errorf("%s lacks the %s label", describe(o), ManifestLabel)
		}
	}
	want := "ServiceAccount kube-system/coredns,ClusterRole system:coredns,ClusterRoleBinding system:coredns," +
		"ConfigMap kube-system/coredns,Deployment kube-system/coredns,Service kube-system/kube-dns"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("objects\n got %s\nwant %s", got, want)
	}
}

func TestDecodeRejectsIncompleteObjects(t *testing.T) {
	for doc, want := range map[string]string{
		"kind: ConfigMap\nmetadata: {name: x}\n":         "lacks apiVersion",
		"---\n---\n":                                     "no objects",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: [\n": "document 0",
	} {
		if _, err := decode("t", []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}

// TestDecodeNetworkPolicy: the Calico CRDs (YAML anchors expanded), then
// the default policies after them.
func TestDecodeNetworkPolicy(t *testing.T) {
	data, err := manifests.Render("network-policy", manifests.Values{ClusterDNS: "10.43.0.10", ClusterDomain: "edge.local",
		CoreDNSImage: "iks.local/coredns:1", APIServerHost: "10.0.0.5", APIServerPort: "6443", ClusterCIDR: "172.30.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode("network-policy", data)
	if err != nil {
		t.Fatal(err)
	}
	var head []string
	for _, o := range objs[:4] {
		head = append(head, describe(o))
	}
	if got, want := strings.Join(head, ","), "ClusterRole iks:network-policy,ClusterRoleBinding iks:network-policy,"+
		"ValidatingAdmissionPolicy iks-node-own-hostendpoints,ValidatingAdmissionPolicyBinding iks-node-own-hostendpoints"; got != want {
		t.Errorf("first objects\n got %s\nwant %s", got, want)
	}
	firstPolicy, lastCRD := -1, -1
	for i, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			lastCRD = i
		case "GlobalNetworkPolicy":
			if firstPolicy < 0 {
				firstPolicy = i
			}
		}
	}
	if lastCRD < 0 || firstPolicy < lastCRD {
		t.Errorf("CRDs at ..%d, first policy at %d: want the CRDs first", lastCRD, firstPolicy)
	}
	// An aliased schema part (the rule's destination is the source's
	// anchor) is expanded.
	gnp := objs[firstPolicy-5]
	if gnp.GetName() != "globalnetworkpolicies.projectcalico.org" {
		t.Fatalf("object %d is %s, want the GlobalNetworkPolicy CRD", firstPolicy-5, describe(gnp))
	}
	versions, _, _ := unstructured.NestedSlice(gnp.Object, "spec", "versions")
	rule, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "egress", "items")
	if _, ok, _ := unstructured.NestedMap(rule, "properties", "destination", "properties", "ports", "items"); !ok {
		t.Errorf("egress rule schema lacks destination.ports: %v", rule)
	}
}
