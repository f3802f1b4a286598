package server

import (
	"context"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The default ServiceAccounts of the quiet namespaces end with
// automountServiceAccountToken false, whether kube-controller-manager
// created them first or not, and a namespace the apiserver has not
// created yet is waited for.
func TestQuietDefaultServiceAccounts(t *testing.T) {
	existing := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: metav1.NamespacePublic}}
	cs := fake.NewClientset(existing)
	notYet := 2
	cs.PrependReactor("patch", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == corev1.NamespaceNodeLease && notYet > 0 {
			notYet--
			return true, nil, apierrors.NewNotFound(corev1.Resource("namespaces"), corev1.NamespaceNodeLease)
		}
		return false, nil, nil
	})
	quietDefaultServiceAccounts(context.Background(), cs, slog.New(slog.DiscardHandler), quietNamespaces...)
	if notYet != 0 {
		t.Errorf("kube-node-lease was not retried after NotFound (%d refusals left)", notYet)
	}
	for _, ns := range quietNamespaces {
		sa, err := cs.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s/default: %v", ns, err)
		}
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("%s/default: automountServiceAccountToken %v, want false", ns, sa.AutomountServiceAccountToken)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(context.Background(), "default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("default/default was touched: %v", err)
	}
}
