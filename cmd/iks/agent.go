package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/agent"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/logging"
	"github.com/iks-dev/iks/internal/version"
)

func newAgentCmd() *cobra.Command {
	var f config.AgentFlags
	cmd := &cobra.Command{
		Use:   "agent --server https://SERVER:6443 --token TOKEN",
		Short: "join this machine to a cluster as a worker node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyFile(cmd.Flags(), f.ConfigFile, cmd.Flags().Changed("config")); err != nil {
				return err
			}
			log := logging.Setup(logging.Options{Debug: f.Debug})
			cfg, err := f.Validate(config.HostEnv{})
			if err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			log.Info("starting iks agent", "version", version.Version, "kubernetes", version.Kubernetes,
				"server", cfg.ServerURL.String(), "node", cfg.NodeName, "node-ip", cfg.NodeIP.String(), "data-dir", cfg.DataDir)
			return agent.Run(ctx, cfg, log)
		},
	}
	f.AddFlags(cmd.Flags())
	return cmd
}
