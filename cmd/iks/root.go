package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/version"
	"github.com/iks-dev/iks/server"
	"github.com/iks-dev/iks/server/token"
)

func newRoot() *cobra.Command {
	// Embedded Kubernetes packages register global flags (--version,
	// klog's ...) on pflag.CommandLine, which cobra would merge into every
	// iks command; iks's commands declare their own flags. The global set
	// is put back once parsing is done: the kubelet copies from it.
	global := pflag.CommandLine
	pflag.CommandLine = pflag.NewFlagSet("iks", pflag.ContinueOnError)
	root := &cobra.Command{
		PersistentPreRun: func(*cobra.Command, []string) { pflag.CommandLine = global },
		Use:              "iks",
		Short:            "IBM Cloud Kubernetes Service in a box",
		Version:          fmt.Sprintf("%s (Kubernetes %s)", version.Version, version.Kubernetes),
		SilenceUsage:     true,
		SilenceErrors:    true,
	}
	root.AddCommand(newServerCmd(), newAgentCmd(), newCheckConfigCmd(), newTokenCmd(), newIPAMCmd(), newNetCmd(), newLBCmd(), newALBCmd(), newVPNCmd(), newPolicyCmd(), newSecretsEncryptCmd(), newEtcdSnapshotCmd(), newCertificateCmd(), toolCmd("kubectl", "run the embedded kubectl (admin kubeconfig by default)", runKubectl),
		toolCmd("crictl", "run crictl against this node's containerd", runCrictl),
		toolCmd("ctr", "run ctr against this node's containerd", func(a []string) int { return runCtr(append([]string{"ctr"}, a...)) }))
	return root
}

// toolCmd wraps an embedded tool: every argument goes to the tool.
func toolCmd(name, short string, fn func([]string) int) *cobra.Command {
	return &cobra.Command{
		Use: name, Short: short, DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := fn(args); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newServerCmd() *cobra.Command {
	var f config.ServerFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "run the control plane and, unless --disable-agent, a node on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, f.ConfigFile, &f.Debug, func() (func(context.Context, *slog.Logger) error, error) {
				cfg, err := f.Validate(config.HostEnv{})
				if err == nil && cfg.Token != "" {
					err = token.CheckFlag(cfg.Token)
				}
				if err != nil {
					return nil, err
				}
				return func(ctx context.Context, log *slog.Logger) error {
					log.Info("starting iks server", "version", version.Version, "kubernetes", version.Kubernetes,
						"node", cfg.NodeName, "node-ip", cfg.NodeIP.String(), "data-dir", cfg.DataDir)
					logHostFallbacks(log, cfg.Agent.Host)
					return server.Run(ctx, cfg, log)
				}, nil
			})
		},
	}
	f.AddFlags(cmd.Flags())
	cmd.AddCommand(newServerRemoveCmd())
	return cmd
}
