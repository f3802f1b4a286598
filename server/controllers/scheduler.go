package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/iks-dev/iks/internal/component"
)

// Scheduler is the kube-scheduler component.
type Scheduler struct {
	kubeconfig  string
	argsDir     string
	extra       []string
	leaderElect bool
	log         *slog.Logger
	runner      component.Runner
}

// WithLeaderElection makes the scheduler elect a leader among the servers.
func (s *Scheduler) WithLeaderElection() *Scheduler {
	s.leaderElect = true
	return s
}

// RecordArgs records the scheduler's command line in dir
// (component.WriteArgs).
func (s *Scheduler) RecordArgs(dir string) *Scheduler {
	s.argsDir = dir
	return s
}

// WithArgs adds flags (--flag=value) after iks's own.
func (s *Scheduler) WithArgs(extra []string) *Scheduler {
	s.extra = extra
	return s
}

// NewScheduler returns the component.
func NewScheduler(kubeconfig string, log *slog.Logger) *Scheduler {
	return &Scheduler{kubeconfig: kubeconfig, log: log.With("component", "scheduler")}
}

// Name implements component.Component.
func (s *Scheduler) Name() string { return "kube-scheduler" }

// Init implements component.Component.
func (s *Scheduler) Init(context.Context) error { return nil }

// Args returns the kube-scheduler flags.
func (s *Scheduler) Args() []string {
	k := s.kubeconfig
	args := []string{"--kubeconfig=" + k, "--authentication-kubeconfig=" + k, "--authorization-kubeconfig=" + k,
		"--bind-address=127.0.0.1", "--secure-port=10259", "--leader-elect=" + strconv.FormatBool(s.leaderElect), "--profiling=false"}
	return append(args, s.extra...)
}

// Start sets the scheduler up and runs it.
func (s *Scheduler) Start(ctx context.Context) error {
	opts := schedoptions.NewOptions()
	if err := parseNamed("kube-scheduler", *opts.Flags, s.Args()); err != nil {
		return err
	}
	if err := component.WriteArgs(s.argsDir, s.Name(), s.Args()); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	s.runner.Go(ctx, func(ctx context.Context) error {
		cc, sched, err := schedapp.Setup(ctx, opts)
		if err != nil {
			return fmt.Errorf("kube-scheduler setup: %w", err)
		}
		return schedapp.Run(ctx, cc, sched)
	})
	return nil
}

// Healthy reports an exited scheduler.
func (s *Scheduler) Healthy() error { return s.runner.Exited() }

// Stop stops it.
func (s *Scheduler) Stop(ctx context.Context) error { return stopQuietly(ctx, &s.runner, s.log) }

func stopQuietly(ctx context.Context, r *component.Runner, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			log.Debug("did not stop in time; it ends with the process")
			return nil
		}
		return err
	}
	return nil
}
