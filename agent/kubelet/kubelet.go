package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/iks-dev/iks/internal/component"
)

// Kubelet is the component.
type Kubelet struct {
	cfg    Config
	log    *slog.Logger
	runner component.Runner
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Kubelet {
	return &Kubelet{cfg: cfg, log: log.With("component", "kubelet")}
}

// Name implements component.Component.
func (k *Kubelet) Name() string { return "kubelet" }

// Init writes the kubelet configuration.
func (k *Kubelet) Init(context.Context) error { return k.cfg.WriteConfig() }

// Start runs the kubelet command. The kubelet installs the process
// signal handler (once per process) and shuts down on SIGTERM/SIGINT by
// itself.
func (k *Kubelet) Start(ctx context.Context) error {
	cmd := kubeletapp.NewKubeletCommand(ctx)
	cmd.SetArgs(k.cfg.Args())
	if err := component.WriteArgs(k.cfg.ArgsDir, k.Name(), k.cfg.Args()); err != nil {
		return err
	}
	k.runner.Go(ctx, func(ctx context.Context) error {
		if err := cmd.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("kubelet: %w", err)
		}
		return errors.New("kubelet returned")
	})
	return nil
}

// Healthy reports an exited kubelet.
func (k *Kubelet) Healthy() error { return k.runner.Exited() }

// Stop waits briefly for the kubelet to end; pods keep running. The
// kubelet stops on the process's termination signal; it cannot be asked
// otherwise without counting as a second signal, which makes the
// upstream handler exit the process at once.
func (k *Kubelet) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := k.runner.Stop(ctx); err != nil {
		k.log.Warn("kubelet did not stop in time; it ends with the process")
	}
	return nil
}
