package vpnroute

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func condTrue(t string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionTrue}
}
