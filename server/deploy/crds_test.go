package deploy

import (
	"context"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/iks-dev/iks/manifests"
)

// TestManifestCRDsValid runs the apiserver's own CRD validation (schema
// structure, CEL compilation and cost budget) on every CRD of the
// manifests: a CRD the apiserver refuses stops the server's start.
func TestManifestCRDsValid(t *testing.T) {
	v := manifests.Values{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", CoreDNSImage: "x",
		APIServerHost: "10.0.0.5", APIServerPort: "6443", ClusterCIDR: "172.30.0.0/16"}
	n := 0
	for _, name := range manifests.Names() {
		data, err := manifests.Render(name, v)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decode(name, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			n++
			var v1 apiextensionsv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v1); err != nil {
				t.Fatalf("%s: %v", o.GetName(), err)
			}
			apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
			var crd apiextensions.CustomResourceDefinition
			if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
				t.Fatalf("%s: %v", o.GetName(), err)
			}
			if errs := validation.ValidateCustomResourceDefinition(context.Background(), &crd); len(errs) > 0 {
				t.Errorf("CRD %s (manifest %s) would be refused:\n%v", o.GetName(), name, errs.ToAggregate())
			}
		}
	}
	if n < 5 {
		t.Errorf("%d CRDs checked, want at least Calico's 5", n)
	}
}
