package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/lbpool"
)

// lbEntry is one LoadBalancer service in `iks lb status`.
type lbEntry struct {
	IP      string `json:"ip"` // "" while pending
	Service string `json:"service"`
	Pool    string `json:"pool"`
	Subnet  string `json:"subnet,omitempty"`
	Node    string `json:"node"` // the Lease holder announcing the IP, "" if none
	Pending string `json:"pending,omitempty"`
	// Zone and VLAN of the IP's subnet, and the nodes that may hold it
	// (attached to the subnet, Ready, not excluded).
	Zone     string   `json:"zone,omitempty"`
	VLAN     string   `json:"vlan,omitempty"`
	Eligible []string `json:"eligible"`
}

// lbPool is one portable subnet and its use.
type lbPool struct {
	lbpool.Published
	Used int `json:"used"`
	// Nodes attached to the subnet, their zones and VLANs.
	Nodes []string `json:"nodes"`
	Zones []string `json:"zones"`
	VLANs []string `json:"vlans"`
}

type lbStatus struct {
	Pools    []lbPool  `json:"pools"`
	Services []lbEntry `json:"services"`
}

func newLBCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "lb", Short: "LoadBalancer IPs on the portable subnets", Args: cobra.NoArgs}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "each LoadBalancer IP, its service, pool and the node announcing it (run on the server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			st, err := readLBStatus(ctx, cs, time.Now())
			if err != nil {
				return serverHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printLBStatus(cmd, st)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}

func readLBStatus(ctx context.Context, cs kubernetes.Interface, now time.Time) (*lbStatus, error) {
	var subnets []lbpool.Subnet
	cm, err := cs.CoreV1().ConfigMaps(lbpool.ConfigMapNamespace).Get(ctx, lbpool.ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read the pools (%s/%s): %w", lbpool.ConfigMapNamespace, lbpool.ConfigMapName, err)
	default:
		if subnets, err = lbpool.Decode(cm.Data[lbpool.ConfigMapKey]); err != nil {
			return nil, err
		}
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	leases, err := cs.CoordinationV1().Leases(lbpool.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list leases in %s: %w", lbpool.Namespace, err)
	}
	holder := map[string]string{}
	for _, l := range leases.Items {
		sp := l.Spec
		if sp.HolderIdentity == nil || *sp.HolderIdentity == "" || sp.RenewTime == nil || sp.LeaseDurationSeconds == nil {
			continue
		}
		if sp.RenewTime.Add(time.Duration(*sp.LeaseDurationSeconds) * time.Second).After(now) {
			holder[l.Name] = *sp.HolderIdentity
		}
	}
	nodeList, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes := make([]*corev1.Node, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
	}
	placed := map[netip.Prefix]lbpool.Placement{}
	for _, p := range lbpool.Place(subnets, nodes) {
		placed[p.Subnet.Prefix] = p
	}
	st := &lbStatus{Services: []lbEntry{}}
	used := map[netip.Prefix]int{}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.LoadBalancerClass != nil {
			continue
		}
		e := lbEntry{Service: s.Namespace + "/" + s.Name, Pool: string(lbpool.Public)}
		if k, err := lbpool.ParseKind(s.Annotations[lbpool.AnnotationIPType]); err == nil {
			e.Pool = string(k)
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(in.IP)
			if err != nil {
				continue
			}
			e.IP = ip.String()
			if sub, ok := lbpool.Find(subnets, ip); ok {
				e.Pool, e.Subnet = string(sub.Kind), sub.Prefix.String()
				if sub.IsServiceIP(ip) { // the ALB address is not one of the service IPs
					used[sub.Prefix]++
				}
				p := placed[sub.Prefix]
				e.Zone, e.VLAN = strings.Join(zonesOf(p), ","), strings.Join(vlansOf(p), ",")
				e.Eligible = eligibleNodes(nodes, sub)
			}
			e.Node = holder[lbpool.LeaseName(ip)]
			break
		}
		if e.IP == "" {
			e.Pending = lastWarning(ctx, cs, &s)
		}
		st.Services = append(st.Services, e)
	}
	sort.Slice(st.Services, func(i, j int) bool {
		a, b := st.Services[i], st.Services[j]
		if (a.IP == "") != (b.IP == "") {
			return b.IP == ""
		}
		if a.IP != b.IP {
			ai, _ := netip.ParseAddr(a.IP)
			bi, _ := netip.ParseAddr(b.IP)
			return ai.Less(bi)
		}
		return a.Service < b.Service
	})
	for _, sub := range subnets {
		st.Pools = append(st.Pools, lbPool{Published: lbpool.Published{Subnet: sub, Reserved: sub.Reserved(), ALB: sub.ALBIP(),
			ServiceIPs: sub.ServiceIPs()}, Used: used[sub.Prefix],
			Nodes: orEmpty(placed[sub.Prefix].Nodes), Zones: zonesOf(placed[sub.Prefix]), VLANs: vlansOf(placed[sub.Prefix])})
	}
	return st, nil
}

// lastWarning returns the newest Warning event message of a service.
func lastWarning(ctx context.Context, cs kubernetes.Interface, s *corev1.Service) string {
	evs, err := cs.CoreV1().Events(s.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + s.Name + ",type=Warning"})
	if err != nil || len(evs.Items) == 0 {
		return "waiting for an IP"
	}
	last := evs.Items[0]
	for _, e := range evs.Items {
		if e.LastTimestamp.After(last.LastTimestamp.Time) {
			last = e
		}
	}
	return last.Reason + ": " + last.Message
}

func printLBStatus(cmd *cobra.Command, st *lbStatus) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "IP\tSERVICE\tPOOL\tSUBNET\tZONE\tVLAN\tNODE\tELIGIBLE")
	for _, e := range st.Services {
		ip, node, subnet := e.IP, e.Node, e.Subnet
		eligible := strings.Join(e.Eligible, ",")
		if eligible == "" {
			eligible = "none"
		}
		if ip == "" {
			ip = "<pending>"
		}
		if node == "" {
			node = "none"
		}
		if subnet == "" {
			subnet = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ip, e.Service, e.Pool, subnet, dash(e.Zone), dash(e.VLAN), node, eligible)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, e := range st.Services {
		if e.Pending != "" {
			fmt.Fprintf(out, "pending %s: %s\n", e.Service, e.Pending)
		} else if len(e.Eligible) == 0 {
			fmt.Fprintf(out, "%s of %s: no eligible node (none Ready on the subnet's network and side); the IP answers nowhere until one is\n", e.IP, e.Service)
		}
	}
	if len(st.Pools) == 0 {
		_, err := fmt.Fprintln(out, "\nno portable subnets: start the server with --portable-public-subnet / --portable-private-subnet")
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tSUBNET\tZONE\tVLAN\tALB IP\tSERVICE IPS\tUSED\tNODES")
	for _, p := range st.Pools {
		nodes := strings.Join(p.Nodes, ",")
		if nodes == "" {
			nodes = "none: not used (no node on its network)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s-%s\t%d/%d\t%s\n", p.Kind, p.Prefix, dash(strings.Join(p.Zones, ",")), dash(strings.Join(p.VLANs, ",")),
			p.ALB, p.ServiceIPs[0], p.ServiceIPs[len(p.ServiceIPs)-1], p.Used, len(p.ServiceIPs), nodes)
	}
	return w.Flush()
}

// zonesOf is the subnet's zone, or its nodes' zones.
func zonesOf(p lbpool.Placement) []string {
	if p.Subnet.Zone != "" {
		return []string{p.Subnet.Zone}
	}
	return orEmpty(p.Zones)
}

// vlansOf is the subnet's VLAN, or its nodes' VLANs.
func vlansOf(p lbpool.Placement) []string {
	if p.Subnet.VLAN != "" {
		return []string{p.Subnet.VLAN}
	}
	return orEmpty(p.VLANs)
}

// eligibleNodes lists the nodes a speaker would let hold an IP of sub:
// attached, Ready and not excluded from load balancing.
func eligibleNodes(nodes []*corev1.Node, sub lbpool.Subnet) []string {
	out := []string{}
	for _, n := range nodes {
		if _, excluded := n.Labels[corev1.LabelNodeExcludeBalancers]; excluded || !lbpool.Attached(n, sub) {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				out = append(out, n.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
