package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/topology"
	"github.com/iks-dev/iks/internal/vpnconn"
)

// newVPNCheckCmd is `iks vpn check NAME`, the chart's helm tests: the
// configuration is valid, the tunnel is established, the remote gateway
// answered (an IKE SA with it exists), and remote.privateIPtoPing
// answers a ping sent from a pod (so from inside the local subnet); with
// loadBalancerIP, that the gateway's node holds it.
func newVPNCheckCmd(dataDir *string) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check NAME",
		Short: "test a VPN connection: configuration valid, tunnel established, remote gateway answers, loadBalancerIP held, remote.privateIPtoPing answers from a pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dyn, err := vpnClient(*dataDir)
			if err != nil {
				return err
			}
			kubeconfig, err := adminKubeconfig(*dataDir)
			if err != nil {
				return err
			}
			cs, err := kubeutil.Clientset(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			conns, err := readVPNConns(ctx, dyn, args)
			if err != nil {
				return serverHint(err)
			}
			c := conns[0]
			out := cmd.OutOrStdout()
			failed := false
			report := func(name string, ok bool, detail string) {
				mark := "PASS"
				if !ok {
					mark, failed = "FAIL", true
				}
				_, _ = fmt.Fprintf(out, "%s  %-22s %s\n", mark, name, detail)
			}
			valid, _, vmsg := condStr(c, vpnconn.ConditionValid)
			report("configuration valid", valid == "True", vmsg)
			est, reason, emsg := condStr(c, vpnconn.ConditionEstablished)
			report("tunnel established", est == "True", reason+": "+emsg)
			report("remote gateway answers", c.Status.IKE.State == "ESTABLISHED",
				fmt.Sprintf("IKE SA %s with %s", dash(c.Status.IKE.State), dash(c.Status.IKE.RemoteHost)))
			if ip := c.Spec.LoadBalancerIP; ip != "" || c.Spec.ZoneLoadBalancer.IsSet() {
				if ip == "" {
					ip = "zoneLoadBalancer's IP of the gateway's zone"
					if c.Status.Gateway.LoadBalancerIP != "" {
						ip = c.Status.Gateway.LoadBalancerIP
					}
				}
				held := c.Status.Gateway.LoadBalancerIP == ip
				detail := fmt.Sprintf("%s on the gateway's node %s", ip, dash(c.Status.Gateway.Node))
				if !held {
					detail = fmt.Sprintf("%s is not on the gateway's node %s: see `iks lb status` and the Service %s/iks-vpn-%s",
						ip, dash(c.Status.Gateway.Node), vpnconn.Namespace, c.Name)
				}
				report("load balancer IP", held, detail)
			}
			if ip := c.Spec.Remote.PrivateIPtoPing; ip == "" {
				_, _ = fmt.Fprintln(out, "SKIP  remote private IP     remote.privateIPtoPing is not set")
			} else {
				var sel map[string]string
				if c.Spec.ZoneSpecificRoutes && c.Spec.ZoneSelector != "" {
					// Only the nodes of the gateway's zone route to it.
					sel = map[string]string{topology.LabelZone: c.Spec.ZoneSelector}
				}
				msg, err := pingFromPod(ctx, cs, c.Name, ip, sel)
				report("remote private IP", err == nil, msg)
			}
			if failed {
				return errCheckFailed
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "how long the check may take")
	return cmd
}

// pingFromPod runs `iks-vpn ping ADDR` in a short-lived pod of the
// gateway image (on a node of nodeSelector) and returns its
// termination message.
func pingFromPod(ctx context.Context, cs kubernetes.Interface, conn, addr string, nodeSelector map[string]string) (string, error) {
	image, err := embedded.ImageName(embedded.StrongSwanArchive)
	if err != nil {
		return "this iks binary carries no gateway image", err
	}
	pods := cs.CoreV1().Pods(vpnconn.Namespace)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "iks-vpn-check-", Labels: map[string]string{"app": "iks-vpn-check", "network.iks.io/vpnconnection": conn}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false), NodeSelector: nodeSelector,
			Containers: []corev1.Container{{Name: "ping", Image: image, ImagePullPolicy: corev1.PullNever,
				Args:            []string{"ping", addr},
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}}}},
	}
	p, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return "create the check pod", fmt.Errorf("create check pod: %w", err)
	}
	defer func() {
		_ = pods.Delete(context.WithoutCancel(ctx), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	var last *corev1.Pod
	err = kubeutil.Poll(ctx, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		last, err = pods.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return last.Status.Phase == corev1.PodSucceeded || last.Status.Phase == corev1.PodFailed, nil
	})
	if err != nil {
		return fmt.Sprintf("check pod %s did not finish", p.Name), err
	}
	msg := ""
	if cs := last.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Terminated != nil {
		msg = strings.TrimSpace(cs[0].State.Terminated.Message)
	}
	if last.Status.Phase != corev1.PodSucceeded {
		return fmt.Sprintf("from pod %s (%s): %s", p.Name, last.Status.PodIP, msg), fmt.Errorf("ping %s failed", addr)
	}
	return fmt.Sprintf("from pod %s (%s): %s", p.Name, last.Status.PodIP, msg), nil
}
