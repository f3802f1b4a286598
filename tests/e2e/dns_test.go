package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestClusterDNSReplicas: with two Ready nodes the server scales CoreDNS
// to two replicas, spread over both nodes, and each answers cluster
// names (the worker's replica reaches the apiserver across the subnets
// without any Service); a pod on the worker resolves a Service name
// through the kube-dns ClusterIP.
func TestClusterDNSReplicas(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "dn", 94)
	srv := testutil.NewNodeOn(t, "dn-e", nw, "a", 1)
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	cs := srv.Client()
	// One node: one replica.
	pods := waitDNSPods(t, srv, cs, 1, 3*time.Minute)
	if pods[0].Spec.NodeName != srv.Name {
		t.Errorf("the only CoreDNS pod runs on %s, want %s", pods[0].Spec.NodeName, srv.Name)
	}

	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	w := testutil.NewNodeOn(t, "dn-w1", nw, "b", 1).AsAgent("https://"+srv.IP+":6443", token)
	w.StageImage(testutil.BuildImage(t, "./tests/images/httpd", httpdImage), "httpd.tar")
	w.Start()
	w.WaitReady(3 * time.Minute)
	waitNodesReady(t, cs, 2, 2*time.Minute)

	pods = waitDNSPods(t, srv, cs, 2, 3*time.Minute)
	t.Logf("CoreDNS replicas: %s on %s, %s on %s", pods[0].Name, pods[0].Spec.NodeName, pods[1].Name, pods[1].Spec.NodeName)
	if pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Errorf("both CoreDNS replicas run on %s, want one per node", pods[0].Spec.NodeName)
	}
	kube, err := cs.CoreV1().Services("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// From a pod on the worker, through the kube-dns ClusterIP (kube-proxy)
	// and the search path.
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dn-client"}, Spec: corev1.PodSpec{NodeName: w.Name,
		Containers: []corev1.Container{{Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever}}}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, cs, "dn-client", 2*time.Minute)
	eventually(t, 30*time.Second, "kubernetes.default from a pod on the worker", func() error {
		out, err := srv.Kubectl("exec", "dn-client", "--", "/httpd", "lookup", "kubernetes.default")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != kube.Spec.ClusterIP {
			return fmt.Errorf("kubernetes.default resolved to %q, want %s", out, kube.Spec.ClusterIP)
		}
		return nil
	})
	for _, p := range pods {
		eventually(t, 30*time.Second, "CoreDNS on "+p.Spec.NodeName+" answers", func() error {
			c, err := srv.Net.DialContext(context.Background(), "udp", p.Status.PodIP+":53")
			if err != nil {
				return err
			}
			defer c.Close()
			_, ips, err := testutil.DNSQuery(c, "kubernetes.default.svc.cluster.local", 2*time.Second)
			if err != nil {
				return err
			}
			if len(ips) != 1 || ips[0] != kube.Spec.ClusterIP {
				return fmt.Errorf("CoreDNS %s answered %v, want %s", p.Status.PodIP, ips, kube.Spec.ClusterIP)
			}
			return nil
		})
	}
}

// waitDNSPods waits for want Ready CoreDNS pods and replicas == want.
func waitDNSPods(t *testing.T, srv *testutil.Node, cs kubernetes.Interface, want int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = func() error {
			ctx := context.Background()
			d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Spec.Replicas == nil || int(*d.Spec.Replicas) != want {
				return fmt.Errorf("coredns replicas %v, want %d", d.Spec.Replicas, want)
			}
			list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
			if err != nil {
				return err
			}
			ready = ready[:0]
			for _, p := range list.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
						ready = append(ready, p)
					}
				}
			}
			if len(ready) != want || len(list.Items) != want {
				return fmt.Errorf("%d Ready of %d CoreDNS pods, want %d", len(ready), len(list.Items), want)
			}
			return nil
		}()
		if last == nil {
			return ready
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, _ := srv.Kubectl("get", "-A", "pods,deploy", "-o", "wide")
	t.Fatalf("CoreDNS: %v\n%s", last, out)
	return nil
}
