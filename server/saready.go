package server

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// defaultServiceAccount waits for the ServiceAccount default/default,
// which kube-controller-manager creates shortly after it starts: until it
// exists the ServiceAccount admission refuses every pod in "default", so
// a user who creates a pod the moment the node is reported Ready would
// get "serviceaccount default not found".
type defaultServiceAccount struct{ kubeconfig string }

func (d *defaultServiceAccount) Name() string                { return "default-service-account" }
func (d *defaultServiceAccount) Init(context.Context) error  { return nil }
func (d *defaultServiceAccount) Start(context.Context) error { return nil }
func (d *defaultServiceAccount) Stop(context.Context) error  { return nil }

// Ready polls until the ServiceAccount exists.
func (d *defaultServiceAccount) Ready(ctx context.Context) error {
	cs, err := kubeutil.Clientset(d.kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the ServiceAccount default/default did not appear (%v): kube-controller-manager creates it; see its log (component=kube)", last)
	}
	return nil
}
