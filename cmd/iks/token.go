package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/server/token"
)

// tokenTimeout bounds each `iks token` command's API calls.
const tokenTimeout = 30 * time.Second

// newTokenCmd returns `iks token create|list|delete`, run on the server.
func newTokenCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "create, list and delete join tokens (run on the server, as root)",
		Args:  cobra.NoArgs,
	}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")

	var (
		ttl         time.Duration
		description string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "create a join token and print it",
		Long: "Create a bootstrap token for joining agents and print it in full (K10<CA hash>::<id>.<secret>).\n" +
			"Use it with: iks agent --server https://SERVER:6443 --token TOKEN",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			cs, hash, err := tokenClient(dataDir)
			if err != nil {
				return err
			}
			tok, err := token.Create(ctx, cs, hash, ttl, description)
			if err != nil {
				return serverHint(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok.Format())
			return err
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime of the token; 0 for a token that never expires")
	create.Flags().StringVar(&description, "description", "", "what the token is for (shown by \"iks token list\")")

	list := &cobra.Command{
		Use:   "list",
		Short: "list join tokens (IDs only; secrets are not shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			cs, _, err := tokenClient(dataDir)
			if err != nil {
				return err
			}
			infos, err := token.List(ctx, cs)
			if err != nil {
				return serverHint(err)
			}
			serverID := ""
			if st, err := token.ReadServerToken(dataDir); err == nil {
				serverID = st.ID
			}
			return printTokens(cmd, infos, serverID, token.ServerTokenPath(dataDir), time.Now())
		},
	}

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "delete a join token; agents that joined with it keep working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if st, err := token.ReadServerToken(dataDir); err == nil && st.ID == id {
				return fmt.Errorf("token %s is the server token from %s and is re-created at every server start: to "+
					"change it, stop the server, delete that file, start the server (optionally with a new --token), "+
					"then delete the old ID with `iks token delete %s`", id, token.ServerTokenPath(dataDir), id)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			cs, _, err := tokenClient(dataDir)
			if err != nil {
				return err
			}
			if err := token.Delete(ctx, cs, id); err != nil {
				return serverHint(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted token %s\n", id)
			return err
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// tokenClient returns an admin client and the cluster CA hash from the
// server's data dir.
func tokenClient(dataDir string) (kubernetes.Interface, string, error) {
	p := config.Paths{Root: dataDir}
	caFile := filepath.Join(p.TLSDir(), "ca.crt")
	caPEM, err := readServerFile(caFile, dataDir)
	if err != nil {
		return nil, "", err
	}
	hash, err := token.CAHashPEM(caPEM)
	if err != nil {
		return nil, "", fmt.Errorf("cluster CA %s: %w; restore it from a backup of the data dir", caFile, err)
	}
	kubeconfig, err := adminKubeconfig(dataDir)
	if err != nil {
		return nil, "", err
	}
	cs, err := kubeutil.Clientset(kubeconfig)
	if err != nil {
		return nil, "", err
	}
	return cs, hash, nil
}

// adminKubeconfig is the server's admin kubeconfig, checked to be
// readable (with errors that say what to do).
func adminKubeconfig(dataDir string) (string, error) {
	kubeconfig := config.Paths{Root: dataDir}.AdminKubeconfig()
	if _, err := readServerFile(kubeconfig, dataDir); err != nil {
		return "", err
	}
	return kubeconfig, nil
}

// readServerFile reads a file of the server's data dir with errors that
// say what to do.
func readServerFile(path, dataDir string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s not found: is %s the data dir of an iks server? run this on the server, "+
			"or pass --data-dir (env IKS_DATA_DIR)", path, dataDir)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("read %s: %w: run as root (with sudo)", path, err)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// serverHint adds a hint to errors that suggest the server is down.
func serverHint(err error) error {
	if strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w (is `iks server` running?)", err)
	}
	return err
}

// printTokens writes the token table.
func printTokens(cmd *cobra.Command, infos []token.Info, serverID, serverFile string, now time.Time) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tEXPIRES\tUSAGES\tDESCRIPTION")
	for _, in := range infos {
		expires := "never"
		switch {
		case in.Expired(now):
			expires = "expired"
		case !in.Expires.IsZero():
			expires = in.Expires.UTC().Format(time.RFC3339) + " (in " + in.Expires.Sub(now).Round(time.Minute).String() + ")"
		}
		desc := in.Description
		if in.ID == serverID {
			desc = "server token (" + serverFile + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", in.ID, expires, strings.Join(in.Usages, ","), desc)
	}
	return w.Flush()
}

// printJSON writes v as indented JSON, the --json output of the status
// commands (net status, lb status, ipam show).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
