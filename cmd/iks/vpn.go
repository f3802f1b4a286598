package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/vpnconn"
)

func newVPNCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "vpn", Short: "strongSwan IPsec VPN connections (VPNConnection resources)", Args: cobra.NoArgs}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	var asJSON bool
	status := &cobra.Command{
		Use:   "status [NAME]",
		Short: "each VPN connection: valid, established, gateway node, SAs, traffic, last error (run on the server)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dyn, err := vpnClient(dataDir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			conns, err := readVPNConns(ctx, dyn, args)
			if err != nil {
				return serverHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), conns)
			}
			printVPNStatus(cmd, conns, time.Now())
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status, newVPNCheckCmd(&dataDir))
	return cmd
}

func vpnClient(dataDir string) (dynamic.Interface, error) {
	kubeconfig, err := adminKubeconfig(dataDir)
	if err != nil {
		return nil, err
	}
	rc, err := kubeutil.RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return dyn, nil
}

func readVPNConns(ctx context.Context, dyn dynamic.Interface, names []string) ([]*vpnconn.Conn, error) {
	res := dyn.Resource(vpnconn.GVR)
	var out []*vpnconn.Conn
	if len(names) == 1 {
		u, err := res.Get(ctx, names[0], metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("VPNConnection %q not found: list them with `iks vpn status`", names[0])
		}
		if err != nil {
			return nil, fmt.Errorf("get VPNConnection %s: %w", names[0], err)
		}
		c, err := vpnconn.FromUnstructured(u)
		if err != nil {
			return nil, err
		}
		return append(out, c), nil
	}
	l, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list VPNConnections: %w", err)
	}
	for i := range l.Items {
		c, err := vpnconn.FromUnstructured(&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func condStr(c *vpnconn.Conn, t string) (string, string, string) {
	if k := c.Status.Condition(t); k != nil {
		return string(k.Status), k.Reason, k.Message
	}
	return "Unknown", "", ""
}

func printVPNStatus(cmd *cobra.Command, conns []*vpnconn.Conn, now time.Time) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "NAME\tVALID\tESTABLISHED\tREASON\tGATEWAY\tDATAPLANE\tIKE\tCHILD\tUP FOR\tBYTES IN/OUT")
	for _, c := range conns {
		valid, _, _ := condStr(c, vpnconn.ConditionValid)
		est, reason, _ := condStr(c, vpnconn.ConditionEstablished)
		up := "-"
		if t := c.Status.IKE.EstablishedAt; t != nil && est == "True" {
			up = now.Sub(t.Time).Round(time.Second).String()
		}
		gw := c.Status.Gateway.Node
		if gw == "" {
			gw = "-"
		}
		if ip := c.Status.Gateway.LoadBalancerIP; ip != "" {
			gw += " (" + ip + ")"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", c.Name, valid, est, dash(reason), gw, dash(c.Status.Gateway.Dataplane),
			dash(c.Status.IKE.State), dash(c.Status.Child.State), up, c.Status.Child.BytesIn, c.Status.Child.BytesOut)
	}
	_ = w.Flush()
	for _, c := range conns {
		for _, t := range []string{vpnconn.ConditionValid, vpnconn.ConditionEstablished} {
			if s, reason, msg := condStr(c, t); s == "False" && msg != "" {
				_, _ = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s=False (%s): %s\n", c.Name, t, reason, msg)
			}
		}
		if c.Status.LastError != "" {
			_, _ = fmt.Fprintf(cmd.OutOrStdout(), "%s: last error: %s\n", c.Name, c.Status.LastError)
		}
	}
}

// errCheckFailed makes `iks vpn check` exit non-zero.
var errCheckFailed = errors.New("VPN check failed")
