package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/agent/netpol"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// policyRow is one pod in `iks policy show`.
type policyRow struct {
	Pod     string   `json:"pod"`
	Node    string   `json:"node"`
	IP      string   `json:"ip"`
	Ingress []string `json:"ingress"` // policies in evaluation order; none: not isolated
	Egress  []string `json:"egress"`
}

func newPolicyCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "policy", Short: "network policy enforcement", Args: cobra.NoArgs}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	var podFlag string
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "the policies that apply to each pod, ingress and egress, in order (run on the server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ns, name string
			if podFlag != "" {
				var ok bool
				if ns, name, ok = strings.Cut(podFlag, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
					return fmt.Errorf("--pod %q: give NAMESPACE/NAME, e.g. --pod default/web-0", podFlag)
				}
			}
			kubeconfig, err := adminKubeconfig(dataDir)
			if err != nil {
				return err
			}
			cs, err := kubeutil.Clientset(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			rows, err := readPolicyRows(ctx, cs, ns, name, cmd.ErrOrStderr())
			if err != nil {
				return serverHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			return printPolicyRows(cmd.OutOrStdout(), rows)
		},
	}
	show.Flags().StringVar(&podFlag, "pod", "", "only this pod, as NAMESPACE/NAME")
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(show)
	return cmd
}

func readPolicyRows(ctx context.Context, cs kubernetes.Interface, ns, name string, warn io.Writer) ([]policyRow, error) {
	var pods []corev1.Pod
	if name != "" {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
		pods = []corev1.Pod{*p}
	} else {
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		pods = l.Items
	}
	nsl, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	npl, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networkpolicies: %w", err)
	}
	podPtrs := make([]*corev1.Pod, len(pods))
	for i := range pods {
		podPtrs[i] = &pods[i]
	}
	nss := make([]*corev1.Namespace, len(nsl.Items))
	for i := range nsl.Items {
		nss[i] = &nsl.Items[i]
	}
	nps := make([]*networkingv1.NetworkPolicy, len(npl.Items))
	for i := range npl.Items {
		nps[i] = &npl.Items[i]
	}
	policies, eps := netpol.Translate(podPtrs, nss, nps, func(err error) { fmt.Fprintf(warn, "warning: not enforced: %v\n", err) })
	if name != "" && len(eps) == 0 {
		return nil, fmt.Errorf("pod %s/%s has no pod-network IPv4 address (host network, not started or finished): no policy applies to it", ns, name)
	}
	rows := make([]policyRow, 0, len(eps))
	for _, e := range eps {
		r := policyRow{Pod: e.Key(), Node: e.Node, IP: e.IP.String(), Ingress: []string{}, Egress: []string{}}
		for _, p := range netpol.Applying(policies, e, netpol.Ingress) {
			r.Ingress = append(r.Ingress, policyLabel(p))
		}
		for _, p := range netpol.Applying(policies, e, netpol.Egress) {
			r.Egress = append(r.Egress, policyLabel(p))
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Pod < rows[j].Pod })
	return rows, nil
}

// policyLabel is how a policy reads in the table: NAMESPACE/NAME for a
// Kubernetes NetworkPolicy.
func policyLabel(p *netpol.Policy) string {
	_, rest, _ := strings.Cut(p.ID, ":")
	return rest
}

func printPolicyRows(out io.Writer, rows []policyRow) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POD\tNODE\tIP\tINGRESS\tEGRESS")
	list := func(ps []string) string {
		if len(ps) == 0 {
			return "(open)"
		}
		return strings.Join(ps, ",")
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Node, r.IP, list(r.Ingress), list(r.Egress))
	}
	return w.Flush()
}
