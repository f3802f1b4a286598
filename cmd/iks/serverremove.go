package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/server/etcd"
)

// newServerRemoveCmd returns `iks server remove NODE`: run on a server
// that stays, after stopping the one to remove.
func newServerRemoveCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "remove a stopped server from the cluster: its etcd member and its Node (run on another server)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			if err := removeMember(ctx, cmd.OutOrStdout(), dataDir, args[0]); err != nil {
				return err
			}
			kc, err := adminKubeconfig(dataDir)
			if err != nil {
				return err
			}
			cs, err := kubeutil.Clientset(kc)
			if err != nil {
				return err
			}
			if err := cs.CoreV1().Nodes().Delete(ctx, args[0], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete Node %s: %w", args[0], err)
			}
			return nil
		},
	}
	dataDirFlag(cmd.Flags(), &dataDir, "this server's data dir")
	return cmd
}

// removeMember removes the server's etcd member; servers on an external
// datastore have none (its membership is the datastore's own).
func removeMember(ctx context.Context, out io.Writer, dataDir, name string) error {
	cli, ds, err := datastoreClient(dataDir)
	if err != nil {
		return err
	}
	defer cli.Close()
	if ds != nil {
		fmt.Fprintf(out, "no etcd member to remove: the servers keep the cluster state in the external datastore %s "+
			"(manage its members with etcdctl member list/remove)\n", strings.Join(ds.Endpoints, ","))
		return nil
	}
	n, err := etcd.RemoveMember(ctx, cli, name)
	if err != nil {
		return serverHint(err)
	}
	fmt.Fprintf(out, "removed etcd member %s; %d members remain\n", name, n)
	if n%2 == 0 {
		fmt.Fprintf(out, "warning: %d servers tolerate no more failures than %d: run an odd number of servers\n", n, n-1)
	}
	return nil
}
