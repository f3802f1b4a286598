package rbac

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NoAutomountServiceAccount is the default ServiceAccount of namespace ns
// with automountServiceAccountToken false: iks applies it in namespaces
// where no pod needs the API (CIS 5.1.5), so none gets a token unasked.
func NoAutomountServiceAccount(ns string) *corev1.ServiceAccount {
	f := false
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}, AutomountServiceAccountToken: &f}
}
