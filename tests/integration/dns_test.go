package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// Cluster DNS test values: the node (10.86.0.0/24 is this test's), the
// namespace it creates, and the made-up external name only the node's
// upstream resolver (a tiny DNS server in the test process) knows.
const (
	dnsNodeIP     = "10.86.0.1"
	dnsNamespace  = "iks-dn-dns"
	dnsClusterIP  = "172.21.0.10" // .10 of the default service range
	dnsExternal   = "external-test.dn.example"
	dnsExternalIP = "192.0.2.53"
	dnsHostSearch = "dn.example"
)

// TestClusterDNS checks the CoreDNS add-on on a single-node server: it
// is deployed at .10 of the service range and becomes Ready, pods get
// resolv.conf with the cluster search path and ndots:5, cluster names
// resolve (full, short through the search path), unknown ones get
// NXDOMAIN, other names are forwarded to the node's resolver, and
// `--disable coredns` removes it from a running cluster.
func TestClusterDNS(t *testing.T) {
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "dn-s", dnsNodeIP)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	n.StageImage(img, "httpd.tar")

	// The node's resolver: a tiny DNS server on the node IP, named by the
	// node's own /etc/resolv.conf (bind-mounted in its mount namespace).
	upstream := testutil.StartDNSServer(t, n.Net, dnsNodeIP+":53", map[string]string{dnsExternal: dnsExternalIP})
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+dnsNodeIP+"\nsearch "+dnsHostSearch+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.MustRun(t, "nsenter", "--mount="+n.Mnt.File, "--", "mount", "--bind", resolv, "/etc/resolv.conf")

	t0 := time.Now()
	n.Start()
	n.WaitReady(3 * time.Minute)
	cs := n.Client()
	ctx := context.Background()
	waitCoreDNSReady(t, n, cs, 1, 3*time.Minute)
	t.Logf("CoreDNS Ready %s after start", time.Since(t0).Round(100*time.Millisecond))

	t.Run("kube-dns Service at .10 of the service range, one replica", func(t *testing.T) {
		svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != dnsClusterIP {
			t.Errorf("kube-dns ClusterIP %s, want %s", svc.Spec.ClusterIP, dnsClusterIP)
		}
		var ports []string
		for _, p := range svc.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
		if !slices.Contains(ports, "53/UDP") || !slices.Contains(ports, "53/TCP") {
			t.Errorf("kube-dns ports %v, want 53/UDP and 53/TCP", ports)
		}
		d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("coredns replicas %v on one node, want 1", d.Spec.Replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("coredns container security context %+v, want no privilege escalation and all capabilities dropped", sc)
		}
		if psc := d.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("coredns pod security context %+v, want runAsNonRoot", psc)
		}
	})

	client := createDNSClient(t, n, cs)
	kubeSvc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	webSvc, err := cs.CoreV1().Services(dnsNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "dn-web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrFromInt(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The client asks the nameserver of its resolv.conf: the kube-dns
	// ClusterIP, through kube-proxy.

	t.Run("pod resolv.conf has the cluster DNS, search path and ndots:5", func(t *testing.T) {
		out, err := client.exec("cat", "/etc/resolv.conf")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"nameserver " + dnsClusterIP,
			"search " + dnsNamespace + ".svc.cluster.local svc.cluster.local cluster.local " + dnsHostSearch,
			"options ndots:5",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("pod resolv.conf lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("cluster names resolve", func(t *testing.T) {
		for name, want := range map[string]string{
			"kubernetes.default.svc.cluster.local":        kubeSvc.Spec.ClusterIP,
			"kubernetes.default":                          kubeSvc.Spec.ClusterIP, // search path: svc.cluster.local
			"web." + dnsNamespace + ".svc.cluster.local.": webSvc.Spec.ClusterIP,
			"web": webSvc.Spec.ClusterIP, // search path: the pod's namespace
		} {
			dnsEventually(t, 30*time.Second, "lookup "+name, func() error {
				out, err := client.exec("lookup", name)
				if err != nil {
					return err
				}
				if strings.TrimSpace(out) != want {
					return fmt.Errorf("%s resolved to %q, want %s", name, out, want)
				}
				return nil
			})
		}
	})

	t.Run("unknown cluster name is NXDOMAIN", func(t *testing.T) {
		out, err := client.exec("dig", "no-such-svc."+dnsNamespace+".svc.cluster.local")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "rcode=NameError") {
			t.Errorf("unknown service: %q, want rcode=NameError (NXDOMAIN)", out)
		}
	})

	t.Run("other names are forwarded to the node's resolver", func(t *testing.T) {
		before := upstream.Queries(dnsExternal)
		for _, name := range []string{dnsExternal, dnsExternal + "."} {
			out, err := client.exec("lookup", name)
			if err != nil {
				t.Fatalf("lookup %s: %v", name, err)
			}
			if strings.TrimSpace(out) != dnsExternalIP {
				t.Errorf("%s resolved to %q, want %s (from the node's resolver)", name, out, dnsExternalIP)
			}
		}
		// CoreDNS caches: at least the first query reached the upstream.
		if after := upstream.Queries(dnsExternal); after <= before {
			t.Errorf("the node's resolver saw no query for %s (%d before, %d after)", dnsExternal, before, after)
		}
		out, err := client.exec("dig", "unknown.dn.example")
		if err != nil || !strings.Contains(out, "rcode=NameError") {
			t.Errorf("unknown external name: %q %v, want NXDOMAIN passed through", out, err)
		}
	})
	if t.Failed() {
		dumpDNSState(t, n)
		return
	}

	t.Run("--disable coredns deletes it, enabling restores it", func(t *testing.T) {
		if _, err := n.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		n.Start("--disable", "coredns")
		n.WaitReady(3 * time.Minute)
		dnsEventually(t, time.Minute, "CoreDNS objects deleted", func() error {
			return coreDNSObjects(ctx, cs, false)
		})
		if _, err := n.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		n.Start()
		n.WaitReady(3 * time.Minute)
		if err := coreDNSObjects(ctx, cs, true); err != nil {
			t.Fatalf("after re-enabling: %v", err)
		}
		waitCoreDNSReady(t, n, cs, 1, 3*time.Minute)
		var out string
		dnsEventually(t, 30*time.Second, "kubernetes.default through the re-created kube-dns Service", func() error {
			out, err = client.exec("lookup", "kubernetes.default")
			return err
		})
		if err != nil || strings.TrimSpace(out) != kubeSvc.Spec.ClusterIP {
			t.Errorf("after re-enabling, kubernetes.default resolved to %q (%v), want %s", out, err, kubeSvc.Spec.ClusterIP)
		}
	})
	if t.Failed() {
		dumpDNSState(t, n)
	}
}

func TestDisableUnknownAddonIsRefused(t *testing.T) {
	testutil.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	out, err := execCommand(testutil.BinPath(t), "server", "--data-dir", dir, "--config", "/dev/null",
		"--write-kubeconfig", "", "--disable", "coredns", "--disable", "kube-dnsx").CombinedOutput()
	if err == nil {
		t.Fatalf("--disable kube-dnsx accepted:\n%s", out)
	}
	for _, want := range []string{`--disable "kube-dnsx"`, "coredns"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("data dir %s created by a refused start", dir)
	}
}

// coreDNSObjects checks that all objects of manifests/coredns.yaml exist
// (want) or are all gone.
func coreDNSObjects(ctx context.Context, cs kubernetes.Interface, want bool) error {
	checks := map[string]func() error{
		"ServiceAccount kube-system/coredns": func() error {
			_, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			return err
		},
		"ConfigMap kube-system/coredns": func() error {
			_, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			return err
		},
		"Deployment kube-system/coredns": func() error {
			_, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			return err
		},
		"Service kube-system/kube-dns": func() error {
			_, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			return err
		},
		"ClusterRole system:coredns": func() error {
			_, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:coredns", metav1.GetOptions{})
			return err
		},
		"ClusterRoleBinding system:coredns": func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "system:coredns", metav1.GetOptions{})
			return err
		},
	}
	var problems []string
	for what, get := range checks {
		err := get()
		switch {
		case want && err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
		case !want && err == nil:
			problems = append(problems, what+" still exists")
		case !want && !apierrors.IsNotFound(err):
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// waitCoreDNSReady waits until the coredns Deployment has want Ready
// replicas and returns its Ready pods.
func waitCoreDNSReady(t *testing.T, n *testutil.Node, cs kubernetes.Interface, want int32, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	dnsEventually(t, timeout, "CoreDNS Ready", func() error {
		ctx := context.Background()
		d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !deploymentReady(d, want) {
			return fmt.Errorf("deployment coredns: replicas %v, ready %d, updated %d, want %d", d.Spec.Replicas,
				d.Status.ReadyReplicas, d.Status.UpdatedReplicas, want)
		}
		list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
		if err != nil {
			return err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) && p.Status.PodIP != "" {
				pods = append(pods, p)
			}
		}
		if int32(len(pods)) != want {
			return fmt.Errorf("%d Ready CoreDNS pods, want %d", len(pods), want)
		}
		return nil
	}, func() { dumpDNSState(t, n) })
	return pods
}

func deploymentReady(d *appsv1.Deployment, want int32) bool {
	return d.Spec.Replicas != nil && *d.Spec.Replicas == want && d.Status.ObservedGeneration >= d.Generation &&
		d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want && d.Status.Replicas == want
}

// dnsClient is a pod of the test image to run DNS clients in.
type dnsClient struct {
	n    *testutil.Node
	name string
}

func (c dnsClient) exec(args ...string) (string, error) {
	return c.n.Kubectl(append([]string{"exec", "-n", dnsNamespace, c.name, "--", "/httpd"}, args...)...)
}

// createDNSClient creates the test namespace and a Ready client pod in it.
func createDNSClient(t *testing.T, n *testutil.Node, cs kubernetes.Interface) dnsClient {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dnsNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Labels: map[string]string{"app": "dn-client"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstrFromInt(8080)}}, PeriodSeconds: 1},
		}}},
	}
	if _, err := cs.CoreV1().Pods(dnsNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dnsEventually(t, 2*time.Minute, "client pod Ready", func() error {
		p, err := cs.CoreV1().Pods(dnsNamespace).Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !podReady(p) {
			return fmt.Errorf("client pod %s", p.Status.Phase)
		}
		return nil
	}, func() { dumpDNSState(t, n) })
	return dnsClient{n: n, name: "client"}
}

// dnsEventually polls f every half second until it succeeds or timeout
// passes; then it runs the dumps and fails the test with f's last error.
func dnsEventually(t *testing.T, timeout time.Duration, what string, f func() error, dumps ...func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			for _, d := range dumps {
				d()
			}
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dumpDNSState logs what explains a DNS failure.
func dumpDNSState(t *testing.T, n *testutil.Node) {
	t.Helper()
	for _, args := range [][]string{
		{"get", "-A", "pods,svc,endpointslices,deploy", "-o", "wide"},
		{"describe", "-n", "kube-system", "deployment/coredns"},
		{"describe", "-n", "kube-system", "pods", "-l", "k8s-app=kube-dns"},
		{"logs", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--tail", "50"},
		{"get", "events", "-A", "--sort-by", ".lastTimestamp"},
	} {
		out, err := n.Kubectl(args...)
		t.Logf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	log := n.Log()
	if len(log) > 8000 {
		log = log[len(log)-8000:]
	}
	t.Logf("iks log tail:\n%s", log)
}
