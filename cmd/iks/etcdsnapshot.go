package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/lock"
	"github.com/iks-dev/iks/server"
	"github.com/iks-dev/iks/server/etcdsnap"
	"github.com/iks-dev/iks/server/pki"
	"github.com/iks-dev/iks/server/secretsenc"
)

// newEtcdSnapshotCmd returns `iks etcd-snapshot save|ls|delete|restore`.
func newEtcdSnapshotCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "etcd-snapshot",
		Short: "save, list, delete and restore snapshots of the cluster's etcd (run on a server, as root)",
		Args:  cobra.NoArgs,
	}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	var name string
	save := &cobra.Command{
		Use:   "save",
		Short: "take a snapshot of the running server's etcd (or of its external datastore) into <data-dir>/server/db/snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			p := config.Paths{Root: dataDir}
			caHash, err := pki.CAHashFile(filepath.Join(p.TLSDir(), "ca.crt"))
			if err != nil {
				return err
			}
			enc, err := secretsenc.Load(filepath.Join(p.CredDir(), secretsenc.FileName))
			if err != nil {
				return err
			}
			node, err := nodeNameOf(dataDir)
			if err != nil {
				return err
			}
			cli, ds, err := datastoreClient(dataDir)
			if err != nil {
				return err
			}
			defer cli.Close()
			t0 := time.Now()
			m, err := etcdsnap.Save(ctx, etcdsnap.SaveOptions{Dir: p.SnapshotDir(), Prefix: name, Node: node,
				CAHash: caHash, EncKeys: enc.Keys, Client: cli, Now: t0})
			if err != nil {
				return serverHint(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes, sha256 %s) in %s\n",
				filepath.Join(p.SnapshotDir(), m.Name), m.Size, m.SHA256, time.Since(t0).Round(time.Millisecond))
			if err == nil && ds != nil {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "this is a snapshot of the whole external datastore %s: restore it with that etcd's tooling "+
					"(etcdutl snapshot restore), not with iks\n", strings.Join(ds.Endpoints, ","))
			}
			return err
		},
	}
	save.Flags().StringVar(&name, "name", etcdsnap.OnDemandPrefix, "name prefix of the snapshot file")
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list the snapshots",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := etcdsnap.List(config.Paths{Root: dataDir}.SnapshotDir())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSIZE\tCREATED\tKIND\tSHA256")
			for _, e := range es {
				if e.Meta == nil {
					fmt.Fprintf(w, "%s\t%d\t-\tincomplete\t%v\n", filepath.Base(e.Path), e.Size, e.Err)
					continue
				}
				kind := "on-demand"
				if e.Meta.Scheduled {
					kind = "scheduled"
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.16s\n", filepath.Base(e.Path), e.Size, e.Meta.Created.Format(time.RFC3339), kind, e.Meta.SHA256)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "delete snapshots by name",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := config.Paths{Root: dataDir}.SnapshotDir()
			for _, n := range args {
				if err := etcdsnap.Delete(dir, n); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", n)
			}
			return nil
		},
	}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "replace the stopped server's etcd data with a snapshot (same as iks server --cluster-reset --cluster-reset-restore-path FILE)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := config.Paths{Root: dataDir}
			if err := server.CheckRestorable(p, args[0]); err != nil {
				return err
			}
			l, err := lock.Acquire(p.LockFile())
			if err != nil {
				return fmt.Errorf("%w: stop iks server before restoring", err)
			}
			defer l.Release()
			caHash, err := pki.CAHashFile(filepath.Join(p.TLSDir(), "ca.crt"))
			if err != nil {
				return err
			}
			path := args[0]
			if filepath.Base(path) == path {
				path = filepath.Join(p.SnapshotDir(), path)
			}
			if err := server.RestoreSnapshot(path, p, caHash, slog.Default()); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "restored; start iks server")
			return err
		},
	}
	cmd.AddCommand(save, ls, del, restore)
	return cmd
}

// nodeNameOf returns the server's node name: the one its PKI issued the
// local kubelet's certificate for, else the host name.
func nodeNameOf(dataDir string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(config.Paths{Root: dataDir}.TLSDir(), "kubelet-client-*.crt"))
	if len(m) == 1 {
		return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "kubelet-client-"), ".crt"), nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name: %w", err)
	}
	return strings.ToLower(h), nil
}
