package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

const npNS, npClientNS = "np", "np-clients"

// TestNetworkPolicy: Kubernetes NetworkPolicy on a server (subnet a) and
// an agent (subnet b): default deny, allow by pod label with a named
// port, by namespace, by ipBlock (an external client through a NodePort),
// egress deny to the external namespace with a ClusterIP still reaching an
// allowed backend, policy update and pod label change, and the node's own
// probes under deny-all.
func TestNetworkPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "np", 88)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	srv := testutil.NewNodeOn(t, "np-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	w := testutil.NewNodeOn(t, "np-w", nw, "b", 2).AsAgent("https://"+srv.IP+":6443", token)
	w.StageImage(img, "httpd.tar")
	w.Start()
	w.WaitReady(3 * time.Minute)
	cs := srv.Client()
	waitNodesReady(t, cs, 2, 2*time.Minute)
	ext := testutil.NewNetns(t, "iks-np-ext")
	extIP := nw.IP("ext", 10)
	nw.Attach(ext, "ext", extIP, "v-np-ext")
	startExternalHTTPD(t, ext)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*testutil.Node{srv, w} {
				out, _ := n.Net.Exec("nft", "list", "table", "inet", "iks-policy")
				t.Logf("===== %s: nft list table inet iks-policy\n%s", n.Name, out)
			}
			out, _ := srv.Command("policy", "show").CombinedOutput()
			t.Logf("===== iks policy show\n%s", out)
			out2, _ := srv.Kubectl("get", "pods,netpol", "-A", "-o", "wide", "--show-labels")
			t.Logf("===== pods and policies\n%s", out2)
		}
	})

	ctx := context.Background()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: npNS}},
		{ObjectMeta: metav1.ObjectMeta{Name: npClientNS, Labels: map[string]string{"team": "client"}}},
	} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// web serves on the agent; the clients run on the server (across
	// subnets) and the namespace client next to web.
	createNPPod(t, cs, npNS, "web", w.Name, map[string]string{"app": "web"})
	createNPPod(t, cs, npNS, "client", srv.Name, map[string]string{"role": "client"})
	createNPPod(t, cs, npNS, "other", srv.Name, map[string]string{"role": "other"})
	createNPPod(t, cs, npClientNS, "nsclient", w.Name, nil)
	webIP := waitPodIP(t, cs, npNS, "web")
	for _, p := range [][2]string{{npNS, "client"}, {npNS, "other"}, {npClientNS, "nsclient"}} {
		waitPodIP(t, cs, p[0], p[1])
	}
	svc, err := cs.CoreV1().Services(npNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	webURL := "http://" + webIP + ":8080/whoami"
	nodePortURL := fmt.Sprintf("http://%s:%d/whoami", w.IP, svc.Spec.Ports[0].NodePort)
	clusterIPURL := "http://" + svc.Spec.ClusterIP + "/whoami"

	from := func(ns, pod, url string) error {
		out, err := srv.Kubectl("exec", "-n", ns, pod, "--", "/httpd", "get", url)
		if err != nil {
			return fmt.Errorf("%s/%s GET %s: %v: %s", ns, pod, url, err, out)
		}
		return nil
	}
	fromExt := func(url string) error {
		_, err := ext.HTTPGet(ctx, url, 3*time.Second)
		return err
	}
	open := func(what string, f func() error) {
		t.Helper()
		eventually(t, time.Minute, what+" open", f)
	}
	blocked := func(what string, f func() error) {
		t.Helper()
		eventually(t, time.Minute, what+" blocked", func() error {
			if f() == nil {
				return fmt.Errorf("%s still answers", what)
			}
			return nil
		})
	}
	apply := func(np *networkingv1.NetworkPolicy) {
		t.Helper()
		np.Namespace = npNS
		if old, err := cs.NetworkingV1().NetworkPolicies(npNS).Get(ctx, np.Name, metav1.GetOptions{}); err == nil {
			np.ResourceVersion = old.ResourceVersion
			_, err = cs.NetworkingV1().NetworkPolicies(npNS).Update(ctx, np, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if _, err := cs.NetworkingV1().NetworkPolicies(npNS).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clientToWeb := func() error { return from(npNS, "client", webURL) }

	t.Run("no policy: everything open", func(t *testing.T) {
		open("client -> web", clientToWeb)
		open("ext -> NodePort", func() error { return fromExt(nodePortURL) })
		open("client -> ext", func() error { return from(npNS, "client", "http://"+extIP+":8080/") })
	})

	t.Run("default deny: pods cut, the node's own probes still pass", func(t *testing.T) {
		apply(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}})
		blocked("client -> web", clientToWeb)
		blocked("nsclient -> web", func() error { return from(npClientNS, "nsclient", webURL) })
		blocked("ext -> NodePort", func() error { return fromExt(nodePortURL) })
		open("node "+w.Name+" -> its pod web", func() error { _, err := w.HTTPGet(ctx, webURL); return err })
		// A pod started under deny-all only gets Ready through kubelet's
		// probe, from its node.
		createNPPod(t, cs, npNS, "late", w.Name, map[string]string{"app": "late"})
		waitPodIP(t, cs, npNS, "late")
	})

	t.Run("allow by pod label on a named port", func(t *testing.T) {
		apply(allowFrom("allow-client", []networkingv1.NetworkPolicyPeer{{PodSelector: labelSel("role", "client")}}, intstr.FromString("http")))
		open("client -> web", clientToWeb)
		blocked("other -> web", func() error { return from(npNS, "other", webURL) })
	})

	t.Run("pod label change takes effect", func(t *testing.T) {
		if _, err := srv.Kubectl("label", "pod", "-n", npNS, "other", "role=client", "--overwrite"); err != nil {
			t.Fatal(err)
		}
		open("relabelled other -> web", func() error { return from(npNS, "other", webURL) })
	})

	t.Run("allow by namespace", func(t *testing.T) {
		apply(allowFrom("allow-ns", []networkingv1.NetworkPolicyPeer{{NamespaceSelector: labelSel("team", "client")}}, intstr.FromInt32(8080)))
		open("nsclient -> web", func() error { return from(npClientNS, "nsclient", webURL) })
	})

	t.Run("allow by ipBlock: the external client through the NodePort", func(t *testing.T) {
		apply(allowFrom("allow-ext", []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
			CIDR: nw.IP("ext", 0) + "/24", Except: []string{nw.IP("ext", 99) + "/32"}}}}, intstr.FromInt32(8080)))
		open("ext -> NodePort", func() error { return fromExt(nodePortURL) })
	})

	t.Run("egress deny to the external namespace; ClusterIP to an allowed backend works", func(t *testing.T) {
		apply(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "client-egress"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *labelSel("role", "client"),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{nw.IP("ext", 0) + "/24"}}}}}}}})
		blocked("client -> ext", func() error { return from(npNS, "client", "http://"+extIP+":8080/") })
		open("client -> web ClusterIP", func() error { return from(npNS, "client", clusterIPURL) })
		open("nsclient (no egress policy) -> ext", func() error { return from(npClientNS, "nsclient", "http://"+extIP+":8080/") })
	})

	t.Run("policy update takes effect", func(t *testing.T) {
		apply(allowFrom("allow-client", []networkingv1.NetworkPolicyPeer{{PodSelector: labelSel("role", "client")}}, intstr.FromInt32(9999)))
		blocked("client -> web after the port moved", clientToWeb)
	})

	t.Run("iks policy show", func(t *testing.T) {
		out, err := srv.Command("policy", "show", "--pod", npNS+"/web").CombinedOutput()
		if err != nil {
			t.Fatalf("iks policy show: %v\n%s", err, out)
		}
		if !hasRow(string(out), npNS+"/web", w.Name, webIP, "np/allow-client,np/allow-ext,np/allow-ns,np/default-deny", "(open)") {
			t.Errorf("iks policy show --pod np/web:\n%s", out)
		}
	})

	t.Run("deleting the policies opens again", func(t *testing.T) {
		if err := cs.NetworkingV1().NetworkPolicies(npNS).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		open("client -> web", clientToWeb)
		open("client -> ext", func() error { return from(npNS, "client", "http://"+extIP+":8080/") })
	})
}

func labelSel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

// allowFrom allows peers to app=web on one port.
func allowFrom(name string, peers []networkingv1.NetworkPolicyPeer, port intstr.IntOrString) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *labelSel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}}
}

func createNPPod(t *testing.T, cs kubernetes.Interface, ns, name, node string, lbl map[string]string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
		}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
