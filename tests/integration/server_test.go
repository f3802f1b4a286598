// Package integration runs one real `iks server` in a temporary data dir
// inside network and mount namespaces of its own, and checks what a user
// of a single-node cluster relies on: a Ready node, pods that serve, a
// restart that keeps pods and objects, and bad input refused cleanly.
package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

const httpdImage = "iks.local/httpd:1"

func TestSingleNodeServer(t *testing.T) {
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "it1", "10.88.0.1")
	// Side-load the test image the k3s way: an archive in agent/images.
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	n.StageImage(img, "httpd.tar")

	// An audit log through --kube-apiserver-arg (CIS 1.2.16, 3.2.1).
	auditLog, policy := filepath.Join(filepath.Dir(n.DataDir), "audit.log"), filepath.Join(filepath.Dir(n.DataDir), "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Start("--kube-apiserver-arg", "audit-log-path="+auditLog, "--kube-apiserver-arg", "audit-policy-file="+policy)
	n.WaitReady(3 * time.Minute)
	cs := n.Client()
	ctx := context.Background()

	t.Run("security", func(t *testing.T) { checkSecurity(t, n) })
	t.Run("--kube-apiserver-arg reaches kube-apiserver and is recorded", func(t *testing.T) {
		args, err := os.ReadFile(filepath.Join(n.DataDir, "run", "args", "kube-apiserver"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(args), "kube-apiserver ") || !strings.Contains(string(args), " --audit-log-path="+auditLog) {
			t.Errorf("recorded kube-apiserver command line lacks the audit flag:\n%s", args)
		}
		for _, name := range []string{"etcd", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
			if _, err := os.Stat(filepath.Join(n.DataDir, "run", "args", name)); err != nil {
				t.Errorf("%s's command line is not recorded: %v", name, err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			data, _ := os.ReadFile(auditLog)
			if strings.Contains(string(data), `"kind":"Event"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audit event in %s after 30 s (%d bytes)", auditLog, len(data))
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("node reports the embedded Kubernetes version and role", func(t *testing.T) {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(v, "v1.36.3") {
			t.Errorf("kubelet version %q, want v1.36.3 (build with make)", v)
		}
		if _, ok := node.Labels["node-role.kubernetes.io/control-plane"]; !ok {
			t.Errorf("server node lacks the control-plane role label: %v", node.Labels)
		}
	})

	var before map[string]podState
	t.Run("deployment serves from every pod", func(t *testing.T) {
		createDeployment(t, cs, "web", 2)
		before = waitPodsServing(t, n, cs, "web", 2, 2*time.Minute)
	})
	if t.Failed() {
		return
	}
	t.Run("Ingress ALB without portable subnets: NodePort", func(t *testing.T) { checkALBNodePort(t, n, cs) })

	caBefore := fileHash(t, filepath.Join(n.DataDir, "server", "tls", "ca.crt"))
	t.Run("restart keeps pods, objects and CA", func(t *testing.T) {
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "before-restart"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		took, err := n.Stop(30 * time.Second)
		if err != nil {
			t.Fatalf("graceful stop: %v (took %s)", err, took)
		}
		t.Logf("server stopped %s after SIGTERM", took)
		// Pods keep running while the server is down.
		for _, p := range before {
			if _, err := n.HTTPGet(ctx, fmt.Sprintf("http://%s:8080/", p.ip)); err != nil {
				t.Errorf("pod %s not reachable while server is stopped: %v", p.name, err)
			}
		}
		n.Start()
		n.WaitReady(3 * time.Minute)
		after := waitPodsServing(t, n, cs, "web", 2, 2*time.Minute)
		for uid, b := range before {
			a, ok := after[uid]
			if !ok {
				t.Errorf("pod %s (uid %s) did not survive the restart", b.name, uid)
				continue
			}
			if a.restarts != b.restarts || a.started != b.started || a.ip != b.ip {
				t.Errorf("pod %s was restarted: before %+v after %+v", b.name, b, a)
			}
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "before-restart", metav1.GetOptions{}); err != nil {
			t.Errorf("configmap lost across restart: %v", err)
		}
		if got := fileHash(t, filepath.Join(n.DataDir, "server", "tls", "ca.crt")); got != caBefore {
			t.Error("cluster CA changed across restart")
		}
	})

	t.Run("kill -9 loses no acknowledged object", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("acked-%d", i)}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		n.Kill()
		n.Start()
		n.WaitReady(3 * time.Minute)
		for i := 0; i < 20; i++ {
			if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, fmt.Sprintf("acked-%d", i), metav1.GetOptions{}); err != nil {
				t.Errorf("acknowledged configmap acked-%d lost after kill -9: %v", i, err)
			}
		}
		waitPodsServing(t, n, cs, "web", 2, 2*time.Minute)
	})

	t.Run("incompatible restart is refused", func(t *testing.T) {
		// A second server on the same data dir and ports must be refused
		// before it writes anything, naming the problem.
		out, err := n.Command(n.Args("--cluster-cidr", "10.60.0.0/16")...).CombinedOutput()
		if err == nil {
			t.Fatalf("second server with another --cluster-cidr started:\n%s", out)
		}
		for _, want := range []string{"--cluster-cidr", "172.30.0.0/16", "port 6443", "in use by another iks"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("refusal does not mention %q:\n%s", want, out)
			}
		}
		if got := fileHash(t, filepath.Join(n.DataDir, "server", "tls", "ca.crt")); got != caBefore {
			t.Error("cluster CA changed by a refused start")
		}
		if exited, _ := n.Exited(); exited {
			t.Error("the running server died when a second one was refused")
		}
	})
}

func TestBadFlagsAreRefused(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BinPath(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--cluster-cidr", "172.30.0.0/33"}, []string{`--cluster-cidr "172.30.0.0/33"`, "for example"}},
		{[]string{"--cluster-cidr", "172.21.0.0/16"}, []string{"overlaps --service-cidr", "disjoint"}},
		{[]string{"--node-ip", "203.0.113.77"}, []string{"--node-ip 203.0.113.77 is not an address of this host"}},
		{[]string{"--data-dir", "relative/dir"}, []string{`--data-dir "relative/dir" must be an absolute path`}},
		{[]string{"--no-such-flag"}, []string{"unknown flag: --no-such-flag"}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		args := append([]string{"server", "--data-dir", dir, "--config", "/dev/null", "--write-kubeconfig", ""}, c.args...)
		cmd := execCommand(bin, args...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v accepted:\n%s", c.args, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%v: output does not contain %q:\n%s", c.args, w, out)
			}
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: data dir %s was created by a refused start", c.args, dir)
		}
	}
}

// TestBadComponentArgsAreRefused: extra flags for the embedded
// control-plane components are parsed by the components' own flag sets
// before the server writes anything. Run inside a node's namespaces: a
// check that let one through must not start a server on the host.
func TestBadComponentArgsAreRefused(t *testing.T) {
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "it3", "10.88.0.3")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--kube-apiserver-arg", "audit-log-pth=/var/log/audit.log"}, []string{"--kube-apiserver-arg", "unknown flag: --audit-log-pth"}},
		{[]string{"--kube-apiserver-arg", "audit-log-maxage=thirty"}, []string{"--kube-apiserver-arg", `"thirty"`}},
		{[]string{"--kube-controller-manager-arg", "no-such-flag=1"}, []string{"--kube-controller-manager-arg", "--no-such-flag"}},
		{[]string{"--kube-scheduler-arg", "profiling=maybe"}, []string{"--kube-scheduler-arg", `"maybe"`}},
		{[]string{"--kube-apiserver-arg", "--profiling=true"}, []string{`--kube-apiserver-arg "--profiling=true" must be flag=value without dashes`}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := n.Command(n.Args(c.args...)...)
		run := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
		run.Env = cmd.Env
		out, err := run.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("%v accepted (%v):\n%s", c.args, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%v: output does not contain %q:\n%s", c.args, w, out)
			}
		}
		if _, err := os.Stat(n.DataDir); err == nil {
			t.Errorf("%v: data dir %s was created by a refused start", c.args, n.DataDir)
		}
	}
}

type podState struct {
	name, ip string
	restarts int32
	started  string
}

func createDeployment(t *testing.T, cs kubernetes.Interface, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstrFromInt(8080)}}, PeriodSeconds: 1},
				}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPodsServing waits for want Ready pods of the app, then requires an
// HTTP answer from each pod IP naming that pod.
func waitPodsServing(t *testing.T, n *testutil.Node, cs kubernetes.Interface, app string, want int, timeout time.Duration) map[string]podState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err == nil {
			out := map[string]podState{}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
					continue
				}
				body, err := n.HTTPGet(ctx, fmt.Sprintf("http://%s:8080/", p.Status.PodIP))
				if err != nil || !strings.Contains(body, "hostname="+p.Name) {
					last = fmt.Sprintf("pod %s at %s: %q %v", p.Name, p.Status.PodIP, body, err)
					continue
				}
				st := podState{name: p.Name, ip: p.Status.PodIP}
				for _, c := range p.Status.ContainerStatuses {
					st.restarts += c.RestartCount
					if c.State.Running != nil {
						st.started = c.State.Running.StartedAt.String()
					}
				}
				out[string(p.UID)] = st
			}
			if len(out) == want {
				return out
			}
			last = fmt.Sprintf("%d of %d pods serving; %s", len(out), want, last)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods of %s not serving: %s", app, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

func TestVersionAndHelp(t *testing.T) {
	bin := testutil.BinPath(t)
	out, err := execCommand(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Kubernetes v1.36.3") {
		t.Fatalf("iks --version: %v: %s", err, out)
	}
	out, err = execCommand(bin, "server", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--cluster-cidr") || strings.Contains(string(out), "--vmodule") {
		t.Fatalf("iks server --help must list iks flags only: %v\n%s", err, out)
	}
}
