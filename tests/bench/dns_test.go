package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestDNSQueries measures DNS queries/s from a pod against CoreDNS — one
// cluster name, 250 pod names, one cached external name, external names
// that all miss the cache (forwarded), and pod names through the kube-dns
// ClusterIP — with, as the baseline, the same client in the same pod
// against a trivial in-process DNS server on the node (one veth less than
// the path to CoreDNS, no DNS logic). Each run is bounded in time and
// count.
func TestDNSQueries(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	const nodeIP, external = "10.86.0.2", "bench.dn.example"
	n := testutil.NewNode(t, "dn-b", nodeIP)
	img := testutil.BuildImage(t, "./tests/images/httpd", "iks.local/httpd:1")
	n.StageImage(img, "httpd.tar")
	upstream := testutil.StartDNSServer(t, n.Net, nodeIP+":53", map[string]string{external: "192.0.2.54", "*." + external: "192.0.2.55"})
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+nodeIP+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.MustRun(t, "nsenter", "--mount="+n.Mnt.File, "--", "mount", "--bind", resolv, "/etc/resolv.conf")
	n.Start()
	n.WaitReady(3 * time.Minute)
	cs := n.Client()
	coredns := waitFor(t, 3*time.Minute, "a Ready CoreDNS pod", func() (string, bool) {
		return readyPodIP(cs, "kube-system", "k8s-app=kube-dns")
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dnsbench", Labels: map[string]string{"app": "dnsbench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "httpd", Image: "iks.local/httpd:1", ImagePullPolicy: corev1.PullNever,
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}}}}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the client pod Ready", func() (string, bool) { return readyPodIP(cs, "default", "app=dnsbench") })

	run := func(server, name string, spread int) float64 {
		t.Helper()
		out, err := n.Kubectl("exec", "dnsbench", "--", "/httpd", "dnsbench", "-server", server, "-name", name,
			"-spread", strconv.Itoa(spread), "-c", "4", "-duration", "5s", "-max", "200000")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`queries=(\d+) errors=(\d+) .* qps=(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dnsbench output %q", out)
		}
		if m[2] != "0" {
			t.Logf("%s %s: %s errors of %s queries", server, name, m[2], m[1])
		}
		qps, _ := strconv.ParseFloat(m[3], 64)
		return qps
	}
	// Names: one cached external name; 250 different pod names (computed
	// by the kubernetes plugin, "pods insecure"); external names that are
	// all different (every query a cache miss, forwarded to the node's
	// resolver).
	const miss = 1 << 30
	base := run(nodeIP+":53", "b%d."+external, miss)
	cluster := run(coredns+":53", "kubernetes.default.svc.cluster.local", 1)
	podNames := run(coredns+":53", "10-9-0-%d.default.pod.cluster.local", 250)
	cached := run(coredns+":53", external, 1)
	missed := run(coredns+":53", "m%d."+external, miss)
	viaService := run("172.21.0.10:53", "10-9-0-%d.default.pod.cluster.local", 250)
	if upstream.Queries(external) == 0 || upstream.Queries("m1."+external) == 0 {
		t.Error("CoreDNS never asked the node's resolver for the external names")
	}
	fmt.Printf("\n== cluster DNS benchmark (pod -> CoreDNS, 4 clients, 5 s each) ==\n"+
		"baseline: tiny DNS server on the node, all names different   %8.0f q/s   (pod -> node: one veth)\n"+
		"CoreDNS, one cluster name (kubernetes.default)              %8.0f q/s   (%.2fx the baseline)\n"+
		"CoreDNS, 250 pod names                                      %8.0f q/s   (%.2fx)\n"+
		"CoreDNS, one external name (cache hit)                      %8.0f q/s   (%.2fx)\n"+
		"CoreDNS, external names all different (miss, forwarded)     %8.0f q/s   (%.2fx)\n"+
		"CoreDNS via the kube-dns ClusterIP, 250 pod names           %8.0f q/s   (%.2fx; through kube-proxy)\n"+
		"(CoreDNS is reached pod -> node -> CoreDNS pod, two veths, the baseline one: the ratios include that hop)\n",
		base, cluster, cluster/base, podNames, podNames/base, cached, cached/base, missed, missed/base, viaService, viaService/base)
}

// readyPodIP returns the IP of a Ready pod matching selector.
func readyPodIP(cs kubernetes.Interface, ns, selector string) (string, bool) {
	list, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", false
	}
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
				return p.Status.PodIP, true
			}
		}
	}
	return "", false
}

// waitFor polls f until it reports done, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v, ok := f(); ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not there after %s", what, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
