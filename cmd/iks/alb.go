package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/server/alb"
)

// albEntry is one ALB in `iks alb list`.
type albEntry struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	State     string `json:"state"`
	IP        string `json:"ip"`
	Replicas  string `json:"replicas"` // ready/desired
	Endpoints int    `json:"readyEndpoints"`
	// Health is the self check: pods answering /healthz through the
	// apiserver (the k8s-alb-health check of IKS), "healthy/pods".
	Health string `json:"health"`
}

func newALBCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "alb", Short: "Ingress application load balancers (ALBs)", Args: cobra.NoArgs}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	client := func() (kubernetes.Interface, error) {
		kubeconfig, err := adminKubeconfig(dataDir)
		if err != nil {
			return nil, err
		}
		return kubeutil.Clientset(kubeconfig)
	}
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "each ALB: type, state, IP, replicas and ready endpoints (run on the server)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
			defer cancel()
			entries, err := readALBs(ctx, cs)
			if err != nil {
				return serverHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), entries)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALB\tTYPE\tSTATE\tIP\tREPLICAS\tREADY ENDPOINTS\tHEALTH")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Name, e.Type, e.State, e.IP, e.Replicas, e.Endpoints, e.Health)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	state := func(want string) *cobra.Command {
		return &cobra.Command{
			Use: strings.TrimSuffix(want, "d") + " NAME", Args: cobra.ExactArgs(1),
			Short: map[string]string{alb.Enabled: "enable an ALB: its Service takes the ALB IP again and its pods start",
				alb.Disabled: "disable an ALB: its Service is deleted (the IP is freed) and its pods stop"}[want],
			RunE: func(cmd *cobra.Command, args []string) error {
				cs, err := client()
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), tokenTimeout)
				defer cancel()
				if err := setALBState(ctx, cs, args[0], want); err != nil {
					return serverHint(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ALB %s %s\n", args[0], want)
				return nil
			},
		}
	}
	cmd.AddCommand(list, state(alb.Enabled), state(alb.Disabled))
	return cmd
}

func albNames(cm *corev1.ConfigMap) []string {
	var names []string
	for k := range cm.Data {
		if !strings.Contains(k, ".") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func setALBState(ctx context.Context, cs kubernetes.Interface, name, want string) error {
	cm, err := cs.CoreV1().ConfigMaps(alb.Namespace).Get(ctx, alb.StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no ALBs in this cluster (configmap %s/%s missing): the server creates them unless started with --disable alb", alb.Namespace, alb.StateConfigMap)
	}
	if err != nil {
		return err
	}
	if _, ok := cm.Data[name]; !ok {
		return fmt.Errorf("no ALB %q: the ALBs are %s (see iks alb list)", name, strings.Join(albNames(cm), ", "))
	}
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{name: want}})
	_, err = cs.CoreV1().ConfigMaps(alb.Namespace).Patch(ctx, alb.StateConfigMap, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func readALBs(ctx context.Context, cs kubernetes.Interface) ([]albEntry, error) {
	cm, err := cs.CoreV1().ConfigMaps(alb.Namespace).Get(ctx, alb.StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []albEntry
	for _, n := range albNames(cm) {
		e := albEntry{Name: n, Type: strings.SplitN(n, "-", 2)[0], State: cm.Data[n], IP: "-", Replicas: "0/0"}
		if d, err := cs.AppsV1().Deployments(alb.Namespace).Get(ctx, n, metav1.GetOptions{}); err == nil {
			want := int32(0)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			e.Replicas = fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)
		}
		svc, err := cs.CoreV1().Services(alb.Namespace).Get(ctx, n, metav1.GetOptions{})
		switch {
		case err == nil && svc.Spec.Type == corev1.ServiceTypeNodePort:
			var ps []string
			for _, p := range svc.Spec.Ports {
				ps = append(ps, strconv.Itoa(int(p.Port))+"→"+strconv.Itoa(int(p.NodePort)))
			}
			e.IP = "node ports " + strings.Join(ps, ",")
		case err == nil && len(svc.Status.LoadBalancer.Ingress) > 0:
			e.IP = svc.Status.LoadBalancer.Ingress[0].IP
		case err == nil:
			e.IP = "pending " + cm.Data[n+".ip"]
		case cm.Data[n+".ip"] != "":
			e.IP = "(" + cm.Data[n+".ip"] + ")"
		}
		if err == nil {
			slices, err := cs.DiscoveryV1().EndpointSlices(alb.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + n})
			if err == nil {
				seen := map[string]bool{}
				for _, s := range slices.Items {
					for _, ep := range s.Endpoints {
						if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
							for _, a := range ep.Addresses {
								seen[a] = true
							}
						}
					}
				}
				e.Endpoints = len(seen)
			}
		}
		e.Health = albHealth(ctx, cs, n)
		out = append(out, e)
	}
	return out, nil
}

// albHealth asks each running pod of an ALB for /healthz through the
// apiserver's pod proxy and returns "healthy/pods" ("-" without pods).
func albHealth(ctx context.Context, cs kubernetes.Interface, name string) string {
	pods, err := cs.CoreV1().Pods(alb.Namespace).List(ctx, metav1.ListOptions{LabelSelector: lbpool.LabelALB + "=" + name})
	if err != nil || len(pods.Items) == 0 {
		return "-"
	}
	ok := 0
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := cs.CoreV1().Pods(alb.Namespace).ProxyGet("http", p.Name, strconv.Itoa(alb.HealthPort), "/healthz", nil).DoRaw(cctx)
		cancel()
		if err == nil {
			ok++
		}
	}
	return fmt.Sprintf("%d/%d", ok, len(pods.Items))
}
