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

	"github.com/iks-dev/iks/internal/kubeutil"
)

// defaultServiceAccount makes sure the ServiceAccount default/default
// exists before the node is reported Ready: until it does the
// ServiceAccount admission refuses every pod in "default", so a user who
// creates a pod the moment the node is Ready would get "serviceaccount
// default not found". kube-controller-manager creates it too, but only
// seconds after it starts (3 s of a 10 s first start here): the server
// creates it at once, and the controller finds it there.
type defaultServiceAccount struct {
	kubeconfig string
	log        *slog.Logger
}

func (d *defaultServiceAccount) Name() string                { return "default-service-account" }
func (d *defaultServiceAccount) Init(context.Context) error  { return nil }
func (d *defaultServiceAccount) Start(context.Context) error { return nil }
func (d *defaultServiceAccount) Stop(context.Context) error  { return nil }

// Ready creates the ServiceAccount unless it exists, then polls until it
// can be read.
func (d *defaultServiceAccount) Ready(ctx context.Context) error {
	cs, err := kubeutil.Clientset(d.kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: metav1.NamespaceDefault}}
	if _, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		// Not fatal: kube-controller-manager creates it as well.
		d.log.Debug("create ServiceAccount default/default", "err", err)
	}
	var last error
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the ServiceAccount default/default did not appear (%v): kube-controller-manager creates it; see its log (component=kube)", last)
	}
	quietDefaultServiceAccounts(ctx, cs, d.log, quietNamespaces...)
	return nil
}
