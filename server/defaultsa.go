package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/server/rbac"
)

// quietNamespaces are the namespaces whose default ServiceAccount runs no
// workload: no pod there should get an API token it did not ask for (CIS
// 5.1.5). "default" is left to the user (pods there get the token, as in
// every Kubernetes); kube-system keeps it (CIS's and k3s's exception).
var quietNamespaces = []string{metav1.NamespacePublic, corev1.NamespaceNodeLease}

// quietDefaultServiceAccounts applies rbac.NoAutomountServiceAccount in each
// namespace, waiting up to a minute for a namespace kube-apiserver has not
// created yet. It only warns: nothing else depends on it.
func quietDefaultServiceAccounts(ctx context.Context, cs kubernetes.Interface, log *slog.Logger, namespaces ...string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, ns := range namespaces {
		var last error
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, last = kubeapply.Apply(ctx, cs.CoreV1().ServiceAccounts(ns), rbac.NoAutomountServiceAccount(ns))
			return last == nil || !apierrors.IsNotFound(last), nil
		})
		if err == nil && last != nil {
			err = last
		}
		if err != nil {
			log.Warn("could not turn off token automount for the default ServiceAccount", "namespace", ns, "err", fmt.Errorf("%w (last: %v)", err, last))
		}
	}
}
