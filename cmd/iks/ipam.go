package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/netapi"
)

// ipamView is what `iks ipam show --json` prints.
type ipamView struct {
	PodCIDR   string      `json:"podCIDR,omitempty"`
	BlockSize int         `json:"blockSize,omitempty"`
	Total     int         `json:"totalBlocks,omitempty"`
	Allocated int         `json:"allocated"`
	Capacity  int         `json:"capacity"`
	Blocks    []blockView `json:"blocks"`
}

type blockView struct {
	Name      string `json:"name"`
	CIDR      string `json:"cidr"`
	Node      string `json:"node"`
	Allocated int    `json:"allocated"`
	Capacity  int    `json:"capacity"`
	// OwnerUID is the UID of the Node object the block belongs to;
	// Owner says whether that Node exists ("ok", "node-missing",
	// "stale-uid": the garbage collector will release the block unless
	// the node's agent re-parents it).
	OwnerUID string `json:"ownerUID,omitempty"`
	Owner    string `json:"owner"`
}

// newIPAMCmd returns `iks ipam show`.
func newIPAMCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "ipam", Short: "show the pod address blocks (IPAMBlocks) of the cluster", Args: cobra.NoArgs}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "list blocks with their owner node and usage (run on the server, as root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			kubeconfig, err := adminKubeconfig(dataDir)
			if err != nil {
				return err
			}
			rc, err := kubeutil.RESTConfig(kubeconfig)
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			bc, err := netapi.NewBlockClient(rc)
			if err != nil {
				return err
			}
			v, err := collectIPAM(ctx, cs, bc)
			if err != nil {
				return serverHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			return printIPAM(cmd, v)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(show)
	return cmd
}

func collectIPAM(ctx context.Context, cs kubernetes.Interface, bc *netapi.BlockClient) (*ipamView, error) {
	v := &ipamView{Blocks: []blockView{}}
	cm, err := cs.CoreV1().ConfigMaps(netapi.ClusterNetworkNamespace).Get(ctx, netapi.ClusterNetworkName, metav1.GetOptions{})
	switch {
	case err == nil:
		if nw, err := netapi.ClusterNetworkFromConfigMap(cm); err == nil {
			v.PodCIDR, v.BlockSize, v.Total = nw.PodCIDR.String(), nw.BlockSize, netapi.BlockCount(nw.PodCIDR, nw.BlockSize)
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", netapi.ClusterNetworkNamespace, netapi.ClusterNetworkName, err)
	}
	blocks, err := bc.List(ctx, "")
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	uids := map[string]string{}
	for _, n := range nodes.Items {
		uids[n.Name] = string(n.UID)
	}
	for _, b := range blocks {
		bv := blockView{Name: b.Name, CIDR: b.Spec.CIDR, Node: b.Spec.Node, Allocated: b.Status.Allocated, Capacity: b.Status.Capacity}
		for _, o := range b.OwnerReferences {
			if o.Kind == "Node" {
				bv.OwnerUID = string(o.UID)
			}
		}
		switch uid, ok := uids[b.Spec.Node]; {
		case !ok:
			bv.Owner = "node-missing"
		case uid != bv.OwnerUID:
			bv.Owner = "stale-uid"
		default:
			bv.Owner = "ok"
		}
		v.Allocated += bv.Allocated
		v.Capacity += bv.Capacity
		v.Blocks = append(v.Blocks, bv)
	}
	return v, nil
}

func printIPAM(cmd *cobra.Command, v *ipamView) error {
	out := cmd.OutOrStdout()
	if v.PodCIDR != "" {
		fmt.Fprintf(out, "pod range %s, /%d blocks: %d of %d claimed; %d of %d addresses in use\n\n",
			v.PodCIDR, v.BlockSize, len(v.Blocks), v.Total, v.Allocated, v.Capacity)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BLOCK\tNODE\tALLOCATED\tCAPACITY\tOWNER")
	for _, b := range v.Blocks {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", b.CIDR, b.Node, b.Allocated, b.Capacity, b.Owner)
	}
	return w.Flush()
}
