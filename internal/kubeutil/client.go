// Package kubeutil has small client-go helpers shared by server and agent:
// building clients from kubeconfig files and waiting on node state.
package kubeutil

import (
	"context"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig loads a kubeconfig file.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// Clientset returns a clientset for a kubeconfig file.
func Clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", kubeconfig, err)
	}
	return cs, nil
}

// WaitClientset waits for a kubeconfig file to exist and load, with the
// certificate files it names (kubelet writes its own kubeconfig during TLS
// bootstrap, and the client certificate it points at may come a moment
// later), then returns a clientset for it.
func WaitClientset(ctx context.Context, kubeconfig string) (*kubernetes.Clientset, error) {
	var lastErr error
	err := Poll(ctx, 200*time.Millisecond, func(context.Context) (bool, error) {
		if _, lastErr = os.Stat(kubeconfig); lastErr != nil {
			return false, nil
		}
		_, lastErr = RESTConfig(kubeconfig)
		return lastErr == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s (kubelet TLS bootstrap): %w (last: %v)", kubeconfig, err, lastErr)
	}
	return Clientset(kubeconfig)
}
