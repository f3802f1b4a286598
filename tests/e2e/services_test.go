package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// svcNS is the Kubernetes namespace of TestServices' objects.
const svcNS = "iks-px"

// TestServices checks the embedded kube-proxy on a server and two agents
// (one on the server's subnet, one across the router, in iptables mode
// while the others use auto) with a client and an HTTP server in the
// "external" subnet: ClusterIP load spread, source
// IPs kept pod to pod through a ClusterIP, NodePort on every node,
// externalTrafficPolicy Local, ClientIP session affinity, a selectorless
// Service with a hand-made EndpointSlice to the external server, and an
// ExternalName Service that gets no rules.
func TestServices(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "px", 93)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)

	srv := testutil.NewNodeOn(t, "px-s", nw, "a", 1)
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, filepath.Join(srv.DataDir, "server", "token")))
	url := "https://" + srv.IP + ":6443"
	w1 := testutil.NewNodeOn(t, "px-w1", nw, "a", 2).AsAgent(url, token)
	w2 := testutil.NewNodeOn(t, "px-w2", nw, "b", 1).AsAgent(url, token)
	// w2 runs kube-proxy's iptables mode; the others auto (nftables
	// where supported): both backends serve one cluster.
	w1.StageImage(img, "httpd.tar")
	w1.Start()
	w2.StageImage(img, "httpd.tar")
	w2.Start("--proxy-mode", "iptables")
	for _, w := range []*testutil.Node{w1, w2} {
		w.WaitReady(3 * time.Minute)
	}
	nodes := []*testutil.Node{srv, w1, w2}
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)
	sideloadRunning(t, srv, img)
	for _, n := range nodes {
		want := `kube-proxy mode.* mode=(nftables|iptables)`
		if n == w2 {
			want = `kube-proxy mode.* mode=iptables asked=iptables`
		}
		if !regexp.MustCompile(want).MatchString(n.Log()) {
			t.Errorf("%s did not log its kube-proxy mode (want %s)", n.Name, want)
		}
	}

	ctx := context.Background()
	// kube-proxy runs with each node's kubelet identity: its start-up
	// Event shows the node may write Events (RBAC system:node-proxier).
	eventually(t, time.Minute, "kube-proxy Starting events of every node", func() error {
		evs, err := cs.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		started := map[string]bool{}
		for _, e := range evs.Items {
			if e.ReportingController == "kube-proxy" && e.Reason == "Starting" {
				started[e.Regarding.Name] = true
			}
		}
		for _, n := range nodes {
			if !started[n.Name] {
				return fmt.Errorf("no kube-proxy Starting event for %s (have %v)", n.Name, keys(started))
			}
		}
		return nil
	})
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: svcNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podIP := map[string]string{}
	for _, n := range nodes {
		createSvcPod(t, cs, "web-"+n.Name, n.Name)
	}
	for _, n := range nodes {
		podIP[n.Name] = waitPodIP(t, cs, svcNS, "web-"+n.Name)
	}
	client := "web-" + srv.Name // the pod requests are sent from

	ext := testutil.NewNetns(t, "iks-px-ext")
	extIP := nw.IP("ext", 10)
	nw.Attach(ext, "ext", extIP, "v-px-ext")
	startExternalHTTPD(t, ext)

	all := map[string]string{"app": "px-web"}
	web := createService(t, cs, "web", all, nil)
	onW2 := createService(t, cs, "on-w2", map[string]string{"app": "px-web", "node": w2.Name}, nil)
	onS := createService(t, cs, "on-s", map[string]string{"app": "px-web", "node": srv.Name}, nil)
	np := createService(t, cs, "np", all, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	local := createService(t, cs, "np-local", map[string]string{"app": "px-web", "node": w1.Name}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	sticky := createService(t, cs, "sticky", all, func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	})
	external := createService(t, cs, "external", nil, nil)
	createEndpointSlice(t, cs, "external", extIP, 8080)

	inPod := func(url string) (string, error) {
		return srv.Kubectl("exec", "-n", svcNS, client, "--", "/httpd", "get", url)
	}

	t.Run("ClusterIP from a pod spreads over endpoints on several nodes", func(t *testing.T) {
		seen := map[string]bool{}
		eventually(t, 2*time.Minute, "ClusterIP answers from 2+ pods", func() error {
			out, err := inPod("http://" + web.Spec.ClusterIP + "/")
			if err != nil {
				return err
			}
			if m := regexp.MustCompile(`hostname=(\S+)`).FindStringSubmatch(out); m != nil {
				seen[m[1]] = true
			}
			if len(seen) < 2 {
				return fmt.Errorf("answers came from %v only", keys(seen))
			}
			return nil
		})
	})

	t.Run("pod to pod through a ClusterIP keeps the source IP across nodes", func(t *testing.T) {
		eventually(t, time.Minute, "ClusterIP of the pod on "+w2.Name, func() error {
			out, err := inPod("http://" + onW2.Spec.ClusterIP + "/whoami")
			if err == nil && !strings.Contains(out, "client="+podIP[srv.Name]+"\n") {
				err = fmt.Errorf("backend on %s saw %q, want the client pod's IP %s (no SNAT)", w2.Name, out, podIP[srv.Name])
			}
			return err
		})
	})

	t.Run("same through the iptables-mode node", func(t *testing.T) {
		eventually(t, time.Minute, "ClusterIP of the pod on "+srv.Name+" from "+w2.Name, func() error {
			out, err := srv.Kubectl("exec", "-n", svcNS, "web-"+w2.Name, "--", "/httpd", "get", "http://"+onS.Spec.ClusterIP+"/whoami")
			if err == nil && !strings.Contains(out, "client="+podIP[w2.Name]+"\n") {
				err = fmt.Errorf("backend on %s saw %q, want the client pod's IP %s (no SNAT)", srv.Name, out, podIP[w2.Name])
			}
			return err
		})
	})

	t.Run("NodePort answers on every node IP from outside", func(t *testing.T) {
		port := np.Spec.Ports[0].NodePort
		for _, n := range nodes {
			eventually(t, time.Minute, fmt.Sprintf("NodePort %s:%d from %s", n.IP, port, extIP), func() error {
				_, err := httpGetFrom(ctx, ext, fmt.Sprintf("http://%s:%d/", n.IP, port))
				return err
			})
		}
	})

	t.Run("externalTrafficPolicy Local keeps the client's source IP", func(t *testing.T) {
		port := local.Spec.Ports[0].NodePort
		eventually(t, time.Minute, "Local NodePort on "+w1.Name, func() error {
			out, err := httpGetFrom(ctx, ext, fmt.Sprintf("http://%s:%d/whoami", w1.IP, port))
			if err == nil && !strings.Contains(out, "client="+extIP+"\n") {
				err = fmt.Errorf("backend saw %q, want the external client %s", out, extIP)
			}
			return err
		})
		// A node without a local endpoint does not forward Local traffic.
		if out, err := httpGetFrom(ctx, ext, fmt.Sprintf("http://%s:%d/whoami", w2.IP, port)); err == nil {
			t.Errorf("Local NodePort answered on %s, which has no endpoint: %q", w2.Name, out)
		}
	})

	t.Run("ClientIP session affinity sticks to one endpoint", func(t *testing.T) {
		var first string
		eventually(t, time.Minute, "sticky ClusterIP answers", func() error {
			out, err := inPod("http://" + sticky.Spec.ClusterIP + "/")
			first = out
			return err
		})
		for i := 0; i < 8; i++ {
			out, err := inPod("http://" + sticky.Spec.ClusterIP + "/")
			if err != nil {
				t.Fatal(err)
			}
			if out != first {
				t.Fatalf("request %d went to %q, the first to %q", i+2, out, first)
			}
		}
	})

	t.Run("selectorless Service reaches a server outside the cluster", func(t *testing.T) {
		eventually(t, time.Minute, "selectorless Service to "+extIP, func() error {
			out, err := inPod("http://" + external.Spec.ClusterIP + "/whoami")
			if err == nil && !strings.Contains(out, "client="+srv.IP+"\n") {
				err = fmt.Errorf("external server saw %q, want the node IP %s (NAT outgoing)", out, srv.IP)
			}
			return err
		})
	})

	t.Run("ExternalName Service gets no proxy rules", func(t *testing.T) {
		createService(t, cs, "extname", nil, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.invalid"
			s.Spec.Ports = nil
		})
		// A Service created after it: once its rules are in place,
		// kube-proxy has seen the ExternalName one too.
		createService(t, cs, "after-extname", all, nil)
		for _, n := range nodes {
			eventually(t, time.Minute, "rules for "+svcNS+"/after-extname on "+n.Name, func() error {
				if !strings.Contains(proxyRules(t, n), svcNS+"/after-extname") {
					return fmt.Errorf("no rules yet")
				}
				return nil
			})
			if rules := proxyRules(t, n); strings.Contains(rules, svcNS+"/extname") {
				t.Errorf("%s has rules for the ExternalName Service:\n%s", n.Name, grepLines(rules, svcNS+"/extname"))
			}
		}
	})
}

func createSvcPod(t *testing.T, cs kubernetes.Interface, name, node string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "px-web", "node": node}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
		}}},
	}
	if _, err := cs.CoreV1().Pods(svcNS).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPodIP waits for the pod to be Ready and returns its IP.
func waitPodIP(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	var ip string
	eventually(t, 2*time.Minute, "pod "+ns+"/"+name+" ready", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ip = p.Status.PodIP
				return nil
			}
		}
		return fmt.Errorf("phase %s, not ready", p.Status.Phase)
	})
	return ip
}

// createService creates a Service on port 80 → 8080 selecting sel (none:
// selectorless), changed by mod.
func createService(t *testing.T, cs kubernetes.Interface, name string, sel map[string]string, mod func(*corev1.Service)) *corev1.Service {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
	if mod != nil {
		mod(s)
	}
	out, err := cs.CoreV1().Services(svcNS).Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	return out
}

// createEndpointSlice points the selectorless Service svc at ip:port.
func createEndpointSlice(t *testing.T, cs kubernetes.Interface, svc, ip string, port int32) {
	t.Helper()
	name, proto, ready := "http", corev1.ProtocolTCP, true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-manual", Labels: map[string]string{
			discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "iks-e2e"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(svcNS).Create(context.Background(), es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// startExternalHTTPD runs the test httpd on port 8080 in ns (outside the
// cluster).
func startExternalHTTPD(t *testing.T, ns *testutil.Netns) {
	t.Helper()
	bin := testutil.BuildBinary(t, "./tests/images/httpd")
	server := exec.Command("nsenter", "--net="+ns.Path(), "--", bin)
	server.Env = append(os.Environ(), "PORT=8080")
	server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
}

// httpGetFrom fetches url from inside ns.
func httpGetFrom(ctx context.Context, ns *testutil.Netns, url string) (string, error) {
	return ns.HTTPGet(ctx, url, 3*time.Second)
}

// proxyRules returns the node's packet rules: the nftables ruleset (the
// nftables mode's table) and iptables-save (the iptables mode's chains).
func proxyRules(t *testing.T, n *testutil.Node) string {
	t.Helper()
	nft, _ := n.Net.Exec("nft", "list", "ruleset")
	ipt, _ := n.Net.Exec("iptables-save")
	return nft + "\n" + ipt
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
