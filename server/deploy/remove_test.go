package deploy

import (
	"context"
	"log/slog"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

var cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func configMap(name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("kube-system")
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

// TestRemoveDeletesOnlyWhatIksCreated: a disabled manifest's objects are
// deleted when they carry the manifest label, kept when someone else made
// an object of the same name, and a missing one is no error.
func TestRemoveDeletesOnlyWhatIksCreated(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(),
		configMap("ours", map[string]string{ManifestLabel: "coredns"}),
		configMap("theirs", map[string]string{"app": "my-dns"}),
	)
	d := New(Config{}, slog.New(slog.DiscardHandler))
	d.rendered = map[string][]*unstructured.Unstructured{
		"coredns": {configMap("ours", nil), configMap("theirs", nil), configMap("gone", nil)},
	}
	ctx := context.Background()
	if err := d.remove(ctx, &client{dyn: dyn, mapper: mapper}, "coredns"); err != nil {
		t.Fatal(err)
	}
	cms := dyn.Resource(cmGVR).Namespace("kube-system")
	if _, err := cms.Get(ctx, "ours", metav1.GetOptions{}); err == nil {
		t.Error("the ConfigMap iks created was not deleted")
	}
	if _, err := cms.Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("a user's ConfigMap of the same name was deleted: %v", err)
	}
}
