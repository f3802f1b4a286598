package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ManifestLabel marks every object iks applies with the manifest it came
// from, so `kubectl get -A -l iks.local/manifest` lists the add-ons.
const ManifestLabel = "iks.local/manifest"

// decode splits a rendered multi-document YAML manifest into objects,
// skipping empty documents, and labels each with its manifest name.
func decode(name string, data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("manifest %s: document %d: %w", name, i, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: document %d is not valid YAML: %w", name, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("manifest %s: document %d lacks apiVersion, kind or metadata.name", name, i)
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ManifestLabel] = name
		u.SetLabels(labels)
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifest %s has no objects", name)
	}
	return out, nil
}

// describe names an object for logs and errors: "Deployment kube-system/coredns".
func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}
