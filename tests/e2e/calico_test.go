package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/iks-dev/iks/tests/testutil"
)

const (
	cpNS     = "cp"
	cpPublic = "10.86.4.64/29" // portable public subnet, on the network "pub"
)

// TestCalicoPolicy: Calico's resources with kubectl apply on a server
// (private only) and a dual-homed worker (public interface eth1): the
// nodes' host endpoints, IKS's default policies, the tutorial's
// deny-nodeports closing the public NodePort while the private one, the
// public LoadBalancer IP and the failsafe kubelet port answer, Calico's
// validation at admission, a GlobalNetworkPolicy and a Calico
// NetworkPolicy Deny of low order beating a NetworkPolicy Allow, a Pass
// skipping a later Deny, `iks policy show --node`, and a deny-all on
// every host endpoint that closes the hosts but leaves the nodes' own
// traffic (API, tunnel, new pods, pod to pod) running.
func TestCalicoPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "cp", 86)
	mustExec(t, nw.Router, "ip", "route", "add", cpPublic, "dev", nw.RouterDev("pub"))
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	srv := testutil.NewNodeOn(t, "cp-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start("--portable-public-subnet", cpPublic)
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	w := testutil.NewNodeOn(t, "cp-w", nw, "a", 2).AsAgent("https://"+srv.IP+":6443", token)
	pub := nw.IP("pub", 2)
	nw.AttachSecond(w.Net, "pub", pub, "p-cp-w", "eth1")
	mustExec(t, w.Net, "ip", "route", "replace", "default", "via", nw.Gateway("pub"), "dev", "eth1")
	w.StageImage(img, "httpd.tar")
	w.Start("--public-interface", "eth1")
	w.WaitReady(3 * time.Minute)
	cs := srv.Client()
	waitNodesReady(t, cs, 2, 2*time.Minute)
	ext := testutil.NewNetns(t, "iks-cp-ext")
	nw.Attach(ext, "ext", nw.IP("ext", 10), "v-cp-ext")
	cliA := testutil.NewNetns(t, "iks-cp-cla")
	nw.Attach(cliA, "a", nw.IP("a", 50), "v-cp-cla")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := w.Net.Exec("nft", "list", "table", "inet", "iks-policy")
			t.Logf("===== %s: nft list table inet iks-policy\n%s", w.Name, out)
			out2, _ := srv.Kubectl("get", "hostendpoints,globalnetworkpolicies", "-o", "yaml")
			t.Logf("===== host endpoints and policies\n%s", out2)
		}
	})
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cpNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createNPPod(t, cs, cpNS, "web", w.Name, map[string]string{"app": "web"})
	createNPPod(t, cs, cpNS, "client", srv.Name, map[string]string{"role": "client"})
	webIP := waitPodIP(t, cs, cpNS, "web")
	clientIP := waitPodIP(t, cs, cpNS, "client")
	svc, err := cs.CoreV1().Services(cpNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(cpNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-lb"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var lbIP string
	eventually(t, time.Minute, "public LoadBalancer IP", func() error {
		s, err := cs.CoreV1().Services(cpNS).Get(ctx, "web-lb", metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) != 1 {
			return fmt.Errorf("status %+v (%v)", s.Status.LoadBalancer, err)
		}
		lbIP = s.Status.LoadBalancer.Ingress[0].IP
		return nil
	})
	publicLB := "http://" + lbIP + "/whoami"
	np := svc.Spec.Ports[0].NodePort
	publicNP := fmt.Sprintf("http://%s:%d/whoami", pub, np)
	privateNP := fmt.Sprintf("http://%s:%d/whoami", w.IP, np)
	get := func(from *testutil.Netns, url string) func() error {
		return func() error { _, err := from.HTTPGet(ctx, url, 2*time.Second); return err }
	}
	blocked := func(t *testing.T, what string, f func() error) {
		t.Helper()
		eventually(t, time.Minute, what+" blocked", func() error {
			if f() == nil {
				return fmt.Errorf("%s still answers", what)
			}
			return nil
		})
	}
	dir := t.TempDir()
	apply := func(name, yaml string) (string, error) {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return srv.Kubectl("apply", "-f", p)
	}

	fromClient := func() error {
		out, err := srv.Kubectl("exec", "-n", cpNS, "client", "--", "/httpd", "get", "http://"+webIP+":8080/whoami")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}

	t.Run("every node has its host endpoints, in step with the node", func(t *testing.T) {
		jp := `{range .items[*]}{.metadata.name} {.metadata.labels.ibm\.role} {.spec.interfaceName} {.spec.expectedIPs[0]}{"\n"}{end}`
		want := []string{srv.Name + "-worker-private worker_private eth0 " + srv.IP, w.Name + "-worker-private worker_private eth0 " + w.IP,
			w.Name + "-worker-public worker_public eth1 " + pub}
		eventually(t, time.Minute, "host endpoints", func() error {
			out, err := srv.Kubectl("get", "hostendpoints", "-o", "jsonpath="+jp)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(out); got != strings.Join(want, "\n") {
				return fmt.Errorf("host endpoints\n%s\nwant\n%s", out, strings.Join(want, "\n"))
			}
			return nil
		})
		// A node writes only its own host endpoints.
		kubelet := filepath.Join(w.DataDir, "agent", "kubelet", "kubeconfig")
		out, err := w.Command("kubectl", "--kubeconfig", kubelet, "label", "hostendpoint", srv.Name+"-worker-private", "x=y").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "may only create, change or delete its own HostEndpoints") {
			t.Errorf("node %s labelled %s's host endpoint: %v: %s", w.Name, srv.Name, err, out)
		}
		if out, err := w.Command("kubectl", "--kubeconfig", kubelet, "label", "hostendpoint", w.Name+"-worker-private", "x=y").CombinedOutput(); err != nil {
			t.Errorf("node %s cannot label its own host endpoint: %v: %s", w.Name, err, out)
		}
		if _, err := srv.Kubectl("label", "node", w.Name, "team=blue"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "node label on its host endpoints", func() error {
			out, err := srv.Kubectl("get", "hostendpoints", "-l", "team=blue", "-o", "name")
			if n := strings.Count(out, "hostendpoint"); err != nil || n != 2 {
				return fmt.Errorf("%d host endpoints labelled team=blue (%v): %s", n, err, out)
			}
			return nil
		})
	})

	t.Run("IKS default policies", func(t *testing.T) {
		out, err := srv.Kubectl("get", "globalnetworkpolicies", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"allow-all-outbound", "allow-bigfix-port", "allow-icmp", "allow-node-port-dnat", "allow-sys-mgmt", "allow-vrrp", "allow-all-private-default"} {
			if !strings.Contains(out, "/"+p+"\n") {
				t.Errorf("no default policy %s in\n%s", p, out)
			}
		}
		eventually(t, time.Minute, "public NodePort from the internet", get(ext, publicNP))
		eventually(t, time.Minute, "private NodePort from the private network", get(cliA, privateNP))
		eventually(t, time.Minute, "public LoadBalancer IP from the internet", get(ext, publicLB))
	})

	t.Run("tutorial deny-nodeports closes the public NodePort only", func(t *testing.T) {
		if out, err := apply("deny-nodeports", testutil.IKSTutorialDenyNodePorts); err != nil {
			t.Fatalf("kubectl apply the tutorial's policy: %v: %s", err, out)
		}
		blocked(t, "public NodePort from the internet", get(ext, publicNP))
		if err := get(cliA, privateNP)(); err != nil {
			t.Errorf("private NodePort under deny-nodeports: %v, want open", err)
		}
		if err := get(ext, publicLB)(); err != nil {
			t.Errorf("public LoadBalancer IP under deny-nodeports: %v, want open", err)
		}
		// The kubelet's port on the public side is failsafe.
		c, err := ext.DialContext(ctx, "tcp", pub+":10250")
		if err != nil {
			t.Errorf("kubelet port on the public side under deny-nodeports: %v, want open (failsafe)", err)
		} else {
			c.Close()
		}
		out, err := srv.Command("policy", "show", "--node", w.Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "deny-nodeports") || !strings.Contains(string(out), w.Name+"-worker-public") {
			t.Errorf("iks policy show --node %s: %v\n%s", w.Name, err, out)
		}
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "deny-nodeports"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "public NodePort after deny-nodeports is gone", get(ext, publicNP))
	})

	t.Run("Calico's validation refuses at admission", func(t *testing.T) {
		for _, c := range []struct{ name, spec, want string }{
			{"prednat-egress", "preDNAT: true\n  applyOnForward: true\n  egress: [{action: Allow}]", "PreDNAT policy cannot have egress rules"},
			{"notrack-noforward", "doNotTrack: true\n  ingress: [{action: Allow}]", "ApplyOnForward must be true"},
			{"bad-selector", "selector: app = 'web'", "selector syntax"},
			{"does-not-parse", "selector: \"app == 'web' &&\"", "spec.selector"},
			{"unpaired", "selector: \"(app == 'a(b)' || has(x)\"", "parentheses do not pair up"},
			{"bad-action", "ingress: [{action: Accept}]", "Unsupported value: \"Accept\""},
			{"upside-down", "ingress: [{action: Deny, protocol: TCP, destination: {ports: ['32767:30000']}}]", "port range min <= max"},
			{"ports-no-proto", "ingress: [{action: Deny, destination: {ports: [80]}}]", "ports with protocol"},
		} {
			out, err := apply(c.name, "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: "+c.name+"\nspec:\n  "+c.spec+"\n")
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s: kubectl apply: %v: %s; want a refusal with %q", c.name, err, out, c.want)
			}
		}
		// A host endpoint naming no node would be enforced nowhere.
		out, err := apply("hep-unknown-node", "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: hep-unknown-node\nspec:\n  node: no-such-node\n  interfaceName: eth0\n")
		if want := `spec.node: node "no-such-node" does not exist`; err == nil || !strings.Contains(out, want) || !strings.Contains(out, "kubectl get nodes") {
			t.Errorf("a HostEndpoint on an unknown node: kubectl apply: %v: %s; want a refusal with %q and the fix", err, out, want)
		}
	})

	t.Run("a Calico Deny of low order beats a NetworkPolicy Allow", func(t *testing.T) {
		allow := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-clients, namespace: cp}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]
`
		deny := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-clients}
spec:
  order: 10
  selector: app == 'web' && projectcalico.org/namespace == 'cp'
  ingress:
  - action: Log
  - action: Deny
    source: {selector: role == 'client'}
`
		if out, err := apply("allow-clients", allow); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		eventually(t, time.Minute, "client -> web under the NetworkPolicy", fromClient)
		if out, err := apply("deny-clients", deny); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		blocked(t, "client -> web under the GlobalNetworkPolicy Deny", fromClient)
		// The Log rule before the Deny writes each packet it sees to the
		// kernel log (the nodes' network namespaces log only with
		// nf_log_all_netns, which the test sets for its time).
		prior := strings.TrimSpace(readFile(t, nfLogAllNetns))
		if err := os.WriteFile(nfLogAllNetns, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(nfLogAllNetns, []byte(prior), 0o644) })
		const logged = "iks-policy deny-clients ingress: "
		eventually(t, time.Minute, "the Log action's line in the kernel log", func() error {
			fromClient() // blocked: logged, then denied
			out, err := exec.Command("dmesg").CombinedOutput()
			if err != nil {
				return fmt.Errorf("dmesg: %v: %s", err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, logged) && strings.Contains(line, "SRC="+clientIP+" ") && strings.Contains(line, "DST="+webIP+" ") {
					return nil
				}
			}
			return fmt.Errorf("no kernel log line %q with SRC=%s DST=%s", logged, clientIP, webIP)
		})
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "deny-clients"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "client -> web after the Deny is gone", fromClient)
		// The same with Calico's namespaced NetworkPolicy (same kind name
		// as Kubernetes', another group).
		cnp := `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-clients, namespace: cp}
spec:
  order: 10
  selector: app == 'web'
  ingress: [{action: Deny, protocol: TCP, source: {selector: role == 'client'}, destination: {ports: [http]}}]
`
		if out, err := apply("cnp", cnp); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		blocked(t, "client -> web under the Calico NetworkPolicy Deny", fromClient)
		if out, err := srv.Kubectl("get", "networkpolicies.projectcalico.org,networkpolicies.networking.k8s.io", "-n", cpNS, "-o", "name"); err != nil ||
			!strings.Contains(out, "networkpolicy.projectcalico.org/deny-clients") || !strings.Contains(out, "networkpolicy.networking.k8s.io/allow-clients") {
			t.Errorf("both kinds of NetworkPolicy: %v\n%s", err, out)
		}
		if _, err := srv.Kubectl("delete", "networkpolicies.projectcalico.org", "-n", cpNS, "deny-clients"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "client -> web after the Calico NetworkPolicy is gone", fromClient)
	})

	t.Run("a Pass of lower order hands the packet past a later Deny", func(t *testing.T) {
		// allow-clients (a NetworkPolicy) is still in force.
		deny := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-clients}
spec:
  order: 10
  selector: app == 'web'
  ingress: [{action: Deny, source: {selector: role == 'client'}}]
`
		pass := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pass-clients}
spec:
  order: 5
  selector: app == 'web'
  ingress: [{action: Pass, source: {selector: role == 'client'}}]
`
		if out, err := apply("deny-clients", deny); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		blocked(t, "client -> web under the Deny", fromClient)
		if out, err := apply("pass-clients", pass); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		eventually(t, time.Minute, "client -> web with a Pass before the Deny", fromClient)
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "pass-clients"); err != nil {
			t.Fatal(err)
		}
		blocked(t, "client -> web once the Pass is gone", fromClient)
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "deny-clients"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "client -> web after the Deny is gone", fromClient)
	})

	t.Run("a deny-all on every host endpoint closes the hosts, never the nodes' own traffic", func(t *testing.T) {
		denyAll := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all-hosts}
spec:
  order: 5
  selector: has(ibm.role)
  types: [Ingress, Egress]
  ingress: [{action: Deny}]
  egress: [{action: Deny}]
`
		// A service of the worker's host on a port no failsafe rule opens,
		// and one of the private network the host connects out to.
		serve := func(n *testutil.Netns, addr string) {
			l, err := n.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
		serve(w.Net, ":9099")
		serve(cliA, ":9097")
		dial := func(from *testutil.Netns, addr string) func() error {
			return func() error {
				dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				c, err := from.DialContext(dctx, "tcp", addr)
				if err == nil {
					c.Close()
				}
				return err
			}
		}
		inbound := dial(cliA, w.IP+":9099")
		outbound := dial(w.Net, nw.IP("a", 50)+":9097")
		eventually(t, time.Minute, "private network -> the worker's host port 9099 (allow-all-private-default)", inbound)
		eventually(t, time.Minute, "the worker's host -> the private network", outbound)
		if out, err := apply("deny-all-hosts", denyAll); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		blocked(t, "private network -> the worker's host port 9099", inbound)
		blocked(t, "the worker's host -> the private network", outbound)
		enforced := time.Now()

		// doNotTrack: an untracked Allow, both ways, opens 9099 on the
		// worker again under the deny-all (untracked policies come first and
		// their Allow skips the tracked ones), and its packets bypass
		// conntrack: a table of the test counts them by ct state.
		untracked := fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked-9099}
spec:
  order: 1
  selector: ibm.role == 'worker_private' && kubernetes.io/hostname == '%s'
  doNotTrack: true
  applyOnForward: true
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [9099]}}]
  egress: [{action: Allow, protocol: TCP, source: {ports: [9099]}}]
`, w.Name)
		const cnt = "iks-e2e-ctstate"
		mustExec(t, w.Net, "nft", "add table inet "+cnt+"; add chain inet "+cnt+" c { type filter hook input priority 10; }; "+
			"add rule inet "+cnt+" c tcp dport 9099 ct state untracked counter; add rule inet "+cnt+" c tcp dport 9099 ct state new counter")
		t.Cleanup(func() { w.Net.Exec("nft", "delete", "table", "inet", cnt) })
		if out, err := apply("untracked-9099", untracked); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		eventually(t, time.Minute, "private network -> the worker's host port 9099 under an untracked Allow", inbound)
		untrackedN, newN := ctCounters(t, w.Net, cnt)
		if untrackedN == 0 || newN != 0 {
			t.Errorf("packets to 9099 under doNotTrack: %d untracked, %d tracked as new; want only untracked", untrackedN, newN)
		}
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "untracked-9099"); err != nil {
			t.Fatal(err)
		}
		blocked(t, "private network -> the worker's host port 9099 once the untracked Allow is gone", inbound)

		// The kubelet still renews its lease through the API (failsafe 6443).
		eventually(t, time.Minute, "worker's node lease renewed under the deny-all", func() error {
			l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(enforced) {
				return fmt.Errorf("lease renewed at %v, deny-all enforced at %v", l.Spec.RenewTime, enforced)
			}
			return nil
		})
		// The API reaches the worker's kubelet through the tunnel (exec).
		if out, err := srv.Kubectl("exec", "-n", cpNS, "web", "--", "/httpd", "get", "http://127.0.0.1:8080/whoami"); err != nil {
			t.Errorf("kubectl exec into a pod of the worker under the deny-all: %v: %s", err, out)
		}
		// A new pod on the worker: scheduled, networked (IPAM through the
		// API), probed and Ready.
		createNPPod(t, cs, cpNS, "late", w.Name, map[string]string{"role": "late"})
		waitPodIP(t, cs, cpNS, "late")
		// Pods still talk across nodes (forwarded traffic: no applyOnForward).
		eventually(t, time.Minute, "client -> web across nodes under the deny-all", fromClient)
		n, err := cs.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				t.Errorf("node %s %s under the deny-all: %s", w.Name, c.Status, c.Message)
			}
		}
		if _, err := srv.Kubectl("delete", "globalnetworkpolicy", "deny-all-hosts"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "private network -> the worker's host port 9099 after the deny-all is gone", inbound)
		eventually(t, time.Minute, "the worker's host -> the private network after the deny-all is gone", outbound)
	})
}

// nfLogAllNetns lets nftables' log statement write from network
// namespaces other than the host's.
const nfLogAllNetns = "/proc/sys/net/netfilter/nf_log_all_netns"

// ctCounters reads the packet counts of the two counter rules of table
// inet tbl's chain c (untracked, then new).
func ctCounters(t *testing.T, n *testutil.Netns, tbl string) (untracked, tracked int) {
	t.Helper()
	out, err := n.Exec("nft", "list", "chain", "inet", tbl, "c")
	if err != nil {
		t.Fatalf("nft list chain inet %s c: %v: %s", tbl, err, out)
	}
	var got []int
	for _, line := range strings.Split(out, "\n") {
		var p int
		if i := strings.Index(line, "counter packets "); i >= 0 {
			if _, err := fmt.Sscanf(line[i:], "counter packets %d", &p); err == nil {
				got = append(got, p)
			}
		}
	}
	if len(got) != 2 {
		t.Fatalf("counters of inet %s c: %v\n%s", tbl, got, out)
	}
	return got[0], got[1]
}
