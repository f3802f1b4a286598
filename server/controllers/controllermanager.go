package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"k8s.io/client-go/rest"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/iks-dev/iks/internal/component"
)

// ControllerManagerConfig configures kube-controller-manager.
type ControllerManagerConfig struct {
	Kubeconfig  string
	CA          string
	CAKey       string
	SAKey       string
	ServiceCIDR netip.Prefix
	ExtraArgs   []string
	ArgsDir     string // where its command line is recorded (component.WriteArgs)
}

// ControllerManager is the component.
type ControllerManager struct {
	cfg    ControllerManagerConfig
	log    *slog.Logger
	runner component.Runner
}

// NewControllerManager returns the component.
func NewControllerManager(cfg ControllerManagerConfig, log *slog.Logger) *ControllerManager {
	return &ControllerManager{cfg: cfg, log: log.With("component", "controller-manager")}
}

// Name implements component.Component.
func (c *ControllerManager) Name() string { return "kube-controller-manager" }

// Init implements component.Component.
func (c *ControllerManager) Init(context.Context) error { return nil }

// Args returns the kube-controller-manager flags.
func (c *ControllerManager) Args() []string {
	k := c.cfg.Kubeconfig
	args := []string{
		"--kubeconfig=" + k, "--authentication-kubeconfig=" + k, "--authorization-kubeconfig=" + k,
		"--bind-address=127.0.0.1", "--secure-port=10257",
		"--leader-elect=false", "--profiling=false",
		"--service-account-private-key-file=" + c.cfg.SAKey,
		"--root-ca-file=" + c.cfg.CA,
		"--cluster-signing-cert-file=" + c.cfg.CA,
		"--cluster-signing-key-file=" + c.cfg.CAKey,
		"--use-service-account-credentials=true",
		// Pod address blocks are IPAMBlock objects that nodes claim
		// (server/netctl, agent/blockipam), not node.spec.podCIDR.
		"--allocate-node-cidrs=false",
		"--service-cluster-ip-range=" + c.cfg.ServiceCIDR.String(),
		"--configure-cloud-routes=false",
		"--controllers=*,tokencleaner,-service,-route,-cloud-node-lifecycle",
	}
	return append(args, c.cfg.ExtraArgs...)
}

// Start runs kube-controller-manager as its command's RunE would, minus
// the process-wide signal handler and logging setup iks owns.
func (c *ControllerManager) Start(ctx context.Context) error {
	s, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("kube-controller-manager options: %w", err)
	}
	known, disabled, aliases := cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases()
	nfs := s.Flags(known, disabled, aliases)
	s.ParsedFlags = &nfs
	if err := parseNamed("kube-controller-manager", nfs, c.Args()); err != nil {
		return err
	}
	if err := component.WriteArgs(c.cfg.ArgsDir, c.Name(), c.Args()); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	cfg, err := s.Config(ctx, known, disabled, aliases)
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	completed := cfg.Complete()
	c.runner.Go(ctx, func(ctx context.Context) error { return cmapp.Run(ctx, completed) })
	return nil
}

// Healthy reports an exited controller-manager.
func (c *ControllerManager) Healthy() error { return c.runner.Exited() }

// Stop stops it.
func (c *ControllerManager) Stop(ctx context.Context) error {
	return stopQuietly(ctx, &c.runner, c.log)
}
