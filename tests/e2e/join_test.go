// Package e2e runs multi-node clusters on one machine: every node (the
// server too) in its own network and mount namespaces, wired by the
// harness into two L2 subnets joined by a router namespace.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/nodeclaim"
	"github.com/iks-dev/iks/tests/testutil"
)

const httpdImage = "iks.local/httpd:1"

func TestJoinAndTunnel(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "e2e", 91)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)

	srv := testutil.NewNodeOn(t, "srv", nw, "a", 1)
	w1 := testutil.NewNodeOn(t, "w1", nw, "a", 2) // same subnet as the server
	w2 := testutil.NewNodeOn(t, "w2", nw, "b", 1) // across the router
	for _, w := range []*testutil.Node{w1, w2} {
		w.StageImage(img, "httpd.tar")
	}
	srv.Start()
	// As a user scripts it: both agents start the instant the token file
	// appears, while the server is still starting. The file must appear
	// only once the token is accepted.
	token := waitTokenFile(t, srv, 3*time.Minute)
	tokenAt := time.Now()
	url := "https://" + srv.IP + ":6443"
	for _, w := range []*testutil.Node{w1, w2} {
		w.AsAgent(url, token).Start()
	}
	srv.WaitReady(3 * time.Minute)
	for _, w := range []*testutil.Node{w1, w2} {
		w.WaitReady(3 * time.Minute)
		t.Logf("%s Ready %s after the token file appeared", w.Name, time.Since(tokenAt).Round(100*time.Millisecond))
		if log := w.Log(); strings.Contains(log, "rejected the token") {
			line := log[strings.Index(log, "rejected the token"):]
			t.Errorf("%s saw its token rejected although it started only once the token file appeared: ...%s", w.Name, line[:strings.IndexByte(line+"\n", '\n')])
		}
	}
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)

	t.Run("wrong-CA token is refused and writes nothing", func(t *testing.T) {
		bad := testutil.NewNodeOn(t, "bad", nw, "b", 9).AsAgent(url, otherCluster(token))
		out, err := bad.Command(bad.Args()...).CombinedOutput()
		if err == nil {
			t.Fatalf("agent with a wrong-CA token started:\n%s", out)
		}
		if !strings.Contains(string(out), "another cluster") {
			t.Errorf("refusal does not say the token is for another cluster:\n%s", out)
		}
		if entries := listFiles(bad.DataDir, "agent"); len(entries) > 0 {
			t.Errorf("refused agent wrote credentials: %v", entries)
		}
	})

	sideloadRunning(t, srv, img)
	for _, w := range []*testutil.Node{srv, w1, w2} {
		createPod(t, cs, "web-"+w.Name, w.Name)
	}
	before := map[string]podState{}
	for _, w := range []*testutil.Node{srv, w1, w2} {
		before[w.Name] = waitPodRunning(t, cs, "web-"+w.Name, 2*time.Minute)
	}
	t.Run("pod network across nodes and subnets", func(t *testing.T) { checkPodNetwork(t, nw, cs, srv, w1, w2) })

	// The server must not reach kubelets directly: only the tunnel works.
	for _, w := range []*testutil.Node{w1, w2} {
		rule := []string{"OUTPUT", "-p", "tcp", "-d", w.IP, "--dport", "10250", "-j", "DROP"}
		if _, err := srv.Net.Exec(append([]string{"iptables", "-I"}, rule...)...); err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := srv.Net.DialContext(dctx, "tcp", w.IP+":10250")
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("server still reaches %s:10250 directly", w.IP)
		}
	}

	checkTunnel := func(t *testing.T, deadline time.Duration) {
		for _, w := range []*testutil.Node{w1, w2} {
			pod := "web-" + w.Name
			eventually(t, deadline, "kubectl logs "+pod, func() error {
				out, err := srv.Kubectl("logs", pod)
				if err == nil && !strings.Contains(out, "httpd listening") {
					err = fmt.Errorf("unexpected logs: %q", out)
				}
				return err
			})
			eventually(t, deadline, "kubectl exec "+pod, func() error {
				out, err := srv.Kubectl("exec", pod, "--", "/httpd", "echo", "through", "the", "tunnel")
				if err == nil && !strings.Contains(out, "through the tunnel") {
					err = fmt.Errorf("unexpected exec output: %q", out)
				}
				return err
			})
			eventually(t, deadline, "kubectl port-forward "+pod, func() error { return portForward(srv, pod) })
		}
	}
	t.Run("logs, exec and port-forward through the tunnel", func(t *testing.T) { checkTunnel(t, time.Minute) })

	t.Run("deleted join token is refused and writes nothing", func(t *testing.T) {
		created, err := srv.Command("token", "create", "--ttl", "1h", "--description", "e2e").CombinedOutput()
		if err != nil {
			t.Fatalf("iks token create: %v\n%s", err, created)
		}
		tok := lastLine(string(created))
		id := tok[strings.Index(tok, "::")+2 : strings.Index(tok, ".")]
		if out, err := srv.Command("token", "delete", id).CombinedOutput(); err != nil {
			t.Fatalf("iks token delete: %v\n%s", err, out)
		}
		bad := testutil.NewNodeOn(t, "del", nw, "b", 8).AsAgent(url, tok)
		// A rejected token is retried for a minute (the server may still
		// be starting), then refused.
		eventually(t, 3*time.Minute, "deleted token refused", func() error {
			out, err := bad.Command(bad.Args()...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "rejected the token") || !strings.Contains(string(out), "may still be starting") {
				return fmt.Errorf("agent with a deleted token: err=%v\n%s", err, out)
			}
			return nil
		})
		if entries := listFiles(bad.DataDir, "agent"); len(entries) > 0 {
			t.Errorf("refused agent wrote credentials: %v", entries)
		}
	})

	t.Run("second agent on the same data dir is refused", func(t *testing.T) {
		out, err := w1.Command(w1.Args()...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "in use by another iks") {
			t.Fatalf("second agent on %s: err=%v\n%s", w1.DataDir, err, out)
		}
		if exited, _ := w1.Exited(); exited {
			t.Fatal("the running agent died")
		}
	})

	// Made by the parent test: a subtest's temp dir is too long for
	// containerd's socket path.
	clone := testutil.NewNodeOn(t, "clone", nw, "b", 7).AsAgent(url, token)
	t.Run("second machine with a taken node name is refused, the first untouched", func(t *testing.T) {
		checkTakenNameRefused(t, cs, clone, w1)
	})

	t.Run("agent restart re-registers with the same identity, pods untouched", func(t *testing.T) {
		n0, err := cs.CoreV1().Nodes().Get(context.Background(), w1.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		w1.Start()
		w1.WaitReady(2 * time.Minute)
		if !strings.Contains(w1.Log()[strings.LastIndex(w1.Log(), "===== start"):], "already joined") {
			t.Error("restarted agent did not reuse its credentials")
		}
		n1, err := cs.CoreV1().Nodes().Get(context.Background(), w1.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n1.UID != n0.UID {
			t.Errorf("node object re-created: uid %s -> %s", n0.UID, n1.UID)
		}
		if after := waitPodRunning(t, cs, "web-"+w1.Name, time.Minute); after != before[w1.Name] {
			t.Errorf("pod on %s restarted: before %+v after %+v", w1.Name, before[w1.Name], after)
		}
	})

	t.Run("server restart: tunnel recovers, pods untouched", func(t *testing.T) {
		if _, err := srv.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		srv.Start()
		srv.WaitReady(3 * time.Minute)
		checkTunnel(t, 90*time.Second)
		for _, w := range []*testutil.Node{w1, w2} {
			after := waitPodRunning(t, cs, "web-"+w.Name, time.Minute)
			if after != before[w.Name] {
				t.Errorf("pod on %s restarted: before %+v after %+v", w.Name, before[w.Name], after)
			}
		}
	})

	t.Run("deleted node with stopped agent leaves nothing on the server", func(t *testing.T) {
		ctx := context.Background()
		if err := cs.CoreV1().Pods("default").Delete(ctx, "web-"+w2.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := w2.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Nodes().Delete(ctx, w2.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The pod controller's garbage collector removes pods of deleted
		// nodes after its 40 s quarantine.
		eventually(t, 2*time.Minute, "node, lease and pods of "+w2.Name+" gone", func() error {
			if _, err := cs.CoreV1().Nodes().Get(ctx, w2.Name, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("node still exists")
			}
			if _, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, w2.Name, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("node lease still exists")
			}
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + w2.Name})
			if err != nil || len(pods.Items) > 0 {
				return fmt.Errorf("pods still bound to the node: %v", err)
			}
			if _, err := cs.CoreV1().Secrets(nodeclaim.Namespace).Get(ctx, nodeclaim.SecretName(w2.Name), metav1.GetOptions{}); err == nil {
				return fmt.Errorf("node password still holds the name")
			}
			return nil
		})
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// otherCluster returns the token with a different CA hash.
func otherCluster(tok string) string {
	if len(tok) < 4 {
		return tok
	}
	c := tok[3]
	r := byte('0')
	if c == '0' {
		r = '1'
	}
	return tok[:3] + string(r) + tok[4:]
}

type podState struct {
	uid, started string
	restarts     int32
}

func createPod(t *testing.T, cs kubernetes.Interface, name, node string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitPodRunning(t *testing.T, cs kubernetes.Interface, name string, timeout time.Duration) podState {
	t.Helper()
	var st podState
	eventually(t, timeout, "pod "+name+" running", func() error {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		c := p.Status.ContainerStatuses[0]
		st = podState{uid: string(p.UID), started: c.State.Running.StartedAt.String(), restarts: c.RestartCount}
		return nil
	})
	return st
}

func waitNodesReady(t *testing.T, cs kubernetes.Interface, want int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d nodes Ready", want), func() error {
		nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready, notReady := 0, []string{}
		for _, n := range nodes.Items {
			state := "no Ready condition"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
					state = ""
				} else if c.Type == corev1.NodeReady {
					state = fmt.Sprintf("%s since %s: %s %s", c.Status, c.LastTransitionTime.Format("15:04:05"), c.Reason, c.Message)
				}
			}
			if state != "" {
				notReady = append(notReady, n.Name+" "+state)
			}
		}
		if ready != want {
			return fmt.Errorf("%d of %d nodes Ready; not Ready: %s", ready, want, strings.Join(notReady, "; "))
		}
		return nil
	})
}

// portForward runs kubectl port-forward in the server's namespace and
// fetches the pod's page through it.
func portForward(srv *testutil.Node, pod string) error {
	cmd := srv.Command("kubectl", "--kubeconfig", srv.Kubeconfig(), "port-forward", "pod/"+pod, "18080:8080")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var lastErr error
	for i := 0; i < 50; i++ {
		body, err := srv.HTTPGet(context.Background(), "http://127.0.0.1:18080/")
		if err == nil {
			if !strings.Contains(body, "hostname="+pod) {
				return fmt.Errorf("port-forward reached the wrong pod: %q", body)
			}
			return nil
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("port-forward: %v; kubectl said: %s", lastErr, out.String())
}

// eventually retries f until it succeeds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not done after %s: %v", what, timeout, err)
}

// sideloadRunning imports the image into a running node's containerd.
func sideloadRunning(t *testing.T, n *testutil.Node, img string) {
	t.Helper()
	if out, err := n.Command("ctr", "images", "import", img).CombinedOutput(); err != nil {
		t.Fatalf("import %s on %s: %v\n%s", img, n.Name, err, out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// listFiles lists regular files under dataDir/sub.
func listFiles(dataDir, sub string) []string {
	var out []string
	_ = filepath.Walk(filepath.Join(dataDir, sub), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}
