package kubeapply

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestEncode(t *testing.T) {
	crd := &apiextv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "things.example.io", Labels: map[string]string{"a": "b"}},
		Status: apiextv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}}}
	data, what, err := Encode(crd)
	if err != nil {
		t.Fatal(err)
	}
	if what != "CustomResourceDefinition things.example.io" {
		t.Errorf("what = %q", what)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	md := m["metadata"].(map[string]any)
	if m["apiVersion"] != "apiextensions.k8s.io/v1" || m["kind"] != "CustomResourceDefinition" {
		t.Errorf("type meta %v %v", m["apiVersion"], m["kind"])
	}
	if _, ok := m["status"]; ok {
		t.Error("status is applied")
	}
	if _, ok := md["creationTimestamp"]; ok {
		t.Error("creationTimestamp is applied")
	}
	if l := md["labels"].(map[string]any); l["a"] != "b" || l[ManagedByLabel] != "iks" {
		t.Errorf("labels %v", l)
	}
	if len(crd.Labels) != 1 {
		t.Errorf("Encode changed its argument: %v", crd.Labels)
	}
	if _, _, err := Encode(&struct{ corev1.ConfigMap }{}); err == nil {
		t.Error("an unknown kind was encoded")
	}
}

func TestApplyAndReplace(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "kube-system"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"k": []byte("v")}}
	got, err := Apply(ctx, cs.CoreV1().Secrets("kube-system"), s)
	if err != nil || string(got.Data["k"]) != "v" || got.Labels[ManagedByLabel] != "iks" {
		t.Fatalf("Apply = %+v, %v", got, err)
	}
	mf := got.ManagedFields
	if len(mf) != 1 || mf[0].Manager != FieldManager || mf[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields %+v: want one Apply entry of %s", mf, FieldManager)
	}
	// The first apply is refused as invalid (an immutable field): Replace
	// deletes and applies again.
	refused, deleted := false, false
	cs.PrependReactor("patch", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refused {
			return false, nil, nil
		}
		refused = true
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "s", field.ErrorList{field.Forbidden(field.NewPath("type"), "immutable")})
	})
	cs.PrependReactor("delete", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		deleted = true
		return false, nil, nil
	})
	s.Type = corev1.SecretTypeBootstrapToken
	if _, err := Apply(ctx, cs.CoreV1().Secrets("kube-system"), s); err == nil || !strings.Contains(err.Error(), "apply Secret kube-system/s") {
		t.Fatalf("Apply of an invalid change = %v, want the error naming the object", err)
	}
	refused = false
	got, err = Replace(ctx, cs.CoreV1().Secrets("kube-system"), s)
	if err != nil || !deleted || got.Type != corev1.SecretTypeBootstrapToken {
		t.Fatalf("Replace = %+v, %v (deleted %v)", got, err, deleted)
	}
}
