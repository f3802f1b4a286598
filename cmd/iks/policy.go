package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
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
	var podFlag, nodeFlag string
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "the policies that apply to each pod and, with --node, to the node's host endpoints, in order (run on the server)",
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
			rc, err := kubeutil.RESTConfig(kubeconfig)
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("dynamic client: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			calico, err := netpol.ListCalico(ctx, dyn)
			if apierrors.IsNotFound(err) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: Calico's resources are not served (%v): Kubernetes NetworkPolicies only\n", err)
				calico, err = &netpol.CalicoObjects{}, nil
			}
			if err != nil {
				return serverHint(err)
			}
			rows, err := readPolicyRows(ctx, cs, calico, nodeFlag, ns, name, cmd.ErrOrStderr())
			if err != nil {
				return serverHint(err)
			}
			var hosts []hostRow
			if nodeFlag != "" {
				if hosts, err = readHostRows(ctx, cs, calico, nodeFlag, cmd.ErrOrStderr()); err != nil {
					return serverHint(err)
				}
			}
			if asJSON {
				if nodeFlag != "" {
					return printJSON(cmd.OutOrStdout(), map[string]any{"hostEndpoints": hosts, "pods": rows})
				}
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if nodeFlag != "" {
				printHostRows(cmd.OutOrStdout(), hosts)
			}
			return printPolicyRows(cmd.OutOrStdout(), rows)
		},
	}
	show.Flags().StringVar(&podFlag, "pod", "", "only this pod, as NAMESPACE/NAME")
	show.Flags().StringVar(&nodeFlag, "node", "", "this node's host endpoints (their pre-DNAT, untracked, normal and forwarded policies) and pods")
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(show)
	return cmd
}

// readPolicyRows lists the policies of each pod (only node's when node
// is set), Kubernetes' and Calico's (calico may be nil).
func readPolicyRows(ctx context.Context, cs kubernetes.Interface, calico *netpol.CalicoObjects, node, ns, name string, warn io.Writer) ([]policyRow, error) {
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
	bad := func(err error) { fmt.Fprintf(warn, "warning: not enforced: %v\n", err) }
	policies, eps := netpol.Translate(podPtrs, nss, nps, bad)
	if calico != nil {
		sal, err := cs.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list serviceaccounts: %w", err)
		}
		sas := make([]*corev1.ServiceAccount, len(sal.Items))
		for i := range sal.Items {
			sas[i] = &sal.Items[i]
		}
		netpol.AttachServiceAccounts(eps, sas)
		cps, _, _ := netpol.TranslateCalico(calico, bad)
		policies = append(policies, cps...)
	}
	if node != "" {
		eps = slices.DeleteFunc(eps, func(e *netpol.Endpoint) bool { return e.Node != node })
	}
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
// Kubernetes NetworkPolicy, calico:NAMESPACE/NAME for a Calico one, and
// NAME for a GlobalNetworkPolicy.
func policyLabel(p *netpol.Policy) string {
	kind, rest, _ := strings.Cut(p.ID, ":")
	if kind == "cnp" {
		return "calico:" + rest
	}
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
