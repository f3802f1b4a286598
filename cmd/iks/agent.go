package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/agent"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/version"
)

func newAgentCmd() *cobra.Command {
	var f config.AgentFlags
	cmd := &cobra.Command{
		Use:   "agent --server https://SERVER:6443 --token TOKEN",
		Short: "join this machine to a cluster as a worker node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, f.ConfigFile, &f.Debug, func() (func(context.Context, *slog.Logger) error, error) {
				cfg, err := f.Validate(config.HostEnv{})
				if err != nil {
					return nil, err
				}
				return func(ctx context.Context, log *slog.Logger) error {
					log.Info("starting iks agent", "version", version.Version, "kubernetes", version.Kubernetes,
						"server", cfg.ServerURL.String(), "node", cfg.NodeName, "node-ip", cfg.NodeIP.String(), "data-dir", cfg.DataDir)
					logHostFallbacks(log, cfg.Host)
					return agent.Run(ctx, cfg, log)
				}, nil
			})
		},
	}
	f.AddFlags(cmd.Flags())
	return cmd
}
