package netctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/netapi"
)

// Config of the component.
type Config struct {
	// Kubeconfig is the admin kubeconfig.
	Kubeconfig string
	// Network is the cluster's address plan, published to nodes.
	Network netapi.ClusterNetwork
}

// NetCtl is the server component; start it after kube-apiserver and
// before the local agent, whose IPAM needs the CRD and the ConfigMap.
type NetCtl struct {
	cfg Config
	log *slog.Logger
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *NetCtl {
	return &NetCtl{cfg: cfg, log: log.With("component", "netctl")}
}

// Name implements component.Component.
func (n *NetCtl) Name() string { return "network-api" }

// Init checks the address plan.
func (n *NetCtl) Init(context.Context) error { return n.cfg.Network.Validate() }

// Start installs the CRDs, the access rules and the ConfigMap, retrying
// transient API errors until ctx ends.
func (n *NetCtl) Start(ctx context.Context) error {
	rc, err := kubeutil.RESTConfig(n.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("netctl: client: %w", err)
	}
	ext, err := apiext.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("netctl: apiextensions client: %w", err)
	}
	t0 := time.Now()
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second}
	err = retry.OnError(backoff, transient, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return errors.Join(EnsureCRD(ctx, ext, IPAMBlockCRD()), EnsureAccess(ctx, cs), EnsureClusterNetwork(ctx, cs, n.cfg.Network))
	})
	if err != nil {
		return fmt.Errorf("netctl: %w", err)
	}
	n.log.Info("network API ready", "crd", netapi.IPAMBlockCRDName, "pod-range", n.cfg.Network.PodCIDR.String(),
		"block-size", netapi.FormatSize(n.cfg.Network.BlockSize), "took", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// Stop implements component.Component; nothing runs.
func (n *NetCtl) Stop(context.Context) error { return nil }

// EnsureClusterNetwork applies the kube-system/iks-cluster-network
// ConfigMap, correcting it when it differs.
func EnsureClusterNetwork(ctx context.Context, cs kubernetes.Interface, c netapi.ClusterNetwork) error {
	want := c.ConfigMap()
	_, err := kubeapply.Apply(ctx, cs.CoreV1().ConfigMaps(want.Namespace), want)
	return err
}

// transient reports API errors worth retrying.
func transient(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsInternalError(err) || errors.Is(err, context.DeadlineExceeded)
}
