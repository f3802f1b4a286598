package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/server/secretsenc"
)

// newSecretsEncryptCmd returns `iks secrets-encrypt status|rotate-keys`.
func newSecretsEncryptCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "secrets-encrypt",
		Short: "show and rotate the encryption at rest of Secrets (run on a server, as root)",
		Args:  cobra.NoArgs,
	}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	status := &cobra.Command{
		Use:   "status",
		Short: "show the keys and how the Secrets in etcd are stored",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			p := config.Paths{Root: dataDir}
			c, err := secretsenc.Load(filepath.Join(p.CredDir(), secretsenc.FileName))
			if err != nil {
				return err
			}
			cli, _, err := datastoreClient(dataDir)
			if err != nil {
				return err
			}
			defer cli.Close()
			st, err := secretsenc.ReadStatus(ctx, cli, c)
			if err != nil {
				return serverHint(err)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), st.String())
			return err
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate-keys",
		Short: "add a new key, re-encrypt every Secret with it, then drop the old keys",
		Long: "Rotate the Secrets encryption key of the running server: the new key is added, made the\n" +
			"encrypting key, every Secret is rewritten and checked in etcd, then the old keys are dropped.\n" +
			"Safe to run again after a failure: the old keys are dropped only when no Secret needs them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Minute)
			defer cancel()
			p := config.Paths{Root: dataDir}
			kc, err := adminKubeconfig(dataDir)
			if err != nil {
				return err
			}
			cs, err := kubeutil.Clientset(kc)
			if err != nil {
				return err
			}
			cli, _, err := datastoreClient(dataDir)
			if err != nil {
				return err
			}
			defer cli.Close()
			r := &secretsenc.Rotator{Path: filepath.Join(p.CredDir(), secretsenc.FileName), API: cs, Etcd: cli,
				Log: slog.Default(), Now: time.Now}
			name, err := r.Rotate(ctx)
			if err != nil {
				return serverHint(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "every Secret is now encrypted with %s; the old keys are removed\n", name)
			return err
		},
	}
	cmd.AddCommand(status, rotate)
	return cmd
}
