package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/netapi"
	"github.com/iks-dev/iks/tests/testutil"
)

// TestIPAMBlocks: nodes claim /27 blocks of the pod range as IPAMBlock
// objects owned by their Node; a burst of 100 pods makes nodes claim more
// through the CNI plugin → agent socket path; usage is reported; a node
// may not touch another node's blocks; blocks survive an agent restart and
// are released with a deleted Node.
func TestIPAMBlocks(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "ip", 96)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)

	srv := testutil.NewNodeOn(t, "ip-s", nw, "a", 1)
	srv.Start("--ipam-block-size", "27")
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, filepath.Join(srv.DataDir, "server", "token")))
	url := "https://" + srv.IP + ":6443"
	w1 := testutil.NewNodeOn(t, "ip-w1", nw, "a", 2).AsAgent(url, token)
	w2 := testutil.NewNodeOn(t, "ip-w2", nw, "b", 1).AsAgent(url, token)
	for _, w := range []*testutil.Node{w1, w2} {
		w.StageImage(img, "httpd.tar")
		w.Start()
	}
	for _, w := range []*testutil.Node{w1, w2} {
		w.WaitReady(3 * time.Minute)
	}
	sideloadRunning(t, srv, img)
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)
	bc := srv.BlockClient(srv.Kubeconfig())
	ctx := context.Background()
	podRange := netip.MustParsePrefix("172.30.0.0/16")

	t.Run("every node owns a /27 block owned by its Node object", func(t *testing.T) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		blocks := listBlocks(t, bc)
		for _, n := range nodes.Items {
			own := 0
			for _, b := range blocks {
				if b.Spec.Node != n.Name {
					continue
				}
				own++
				p, err := b.Prefix()
				if err != nil || p.Bits() != 27 || !podRange.Contains(p.Addr()) || b.Name != netapi.BlockName(p) {
					t.Errorf("block %s (%s): want a /27 of %s named after its CIDR (%v)", b.Name, b.Spec.CIDR, podRange, err)
				}
				if !b.OwnedBy(n.Name, string(n.UID)) {
					t.Errorf("block %s of %s is not owned by Node uid %s: %+v", b.Name, n.Name, n.UID, b.OwnerReferences)
				}
			}
			if own == 0 {
				t.Errorf("node %s has no IPAMBlock", n.Name)
			}
		}
	})

	t.Run("a node may not claim or delete another node's blocks", func(t *testing.T) {
		nodeBC := w1.BlockClient(filepath.Join(w1.DataDir, "agent", "kubelet", "kubeconfig"))
		foreign := netapi.NewIPAMBlock(netip.MustParsePrefix("172.30.255.224/27"), w2.Name, "x")
		// RBAC lets nodes create blocks; the admission policy refuses
		// blocks of other nodes.
		if _, err := nodeBC.Create(ctx, foreign); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "its own IPAMBlocks") {
			t.Errorf("%s created a block for %s, or was refused for another reason: err=%v", w1.Name, w2.Name, err)
		}
		var srvBlock string
		for _, b := range listBlocks(t, bc) {
			if b.Spec.Node == srv.Name {
				srvBlock = b.Name
			}
		}
		if err := nodeBC.Delete(ctx, srvBlock); !apierrors.IsForbidden(err) {
			t.Errorf("%s deleted %s's block %s: err=%v", w1.Name, srv.Name, srvBlock, err)
		}
		if _, err := bc.Get(ctx, srvBlock); err != nil {
			t.Errorf("block %s gone: %v", srvBlock, err)
		}
	})

	t.Run("100 pods at once get distinct addresses from their nodes' blocks", func(t *testing.T) {
		const replicas = 100
		ns := "iks-ip-burst"
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		createBurst(t, cs, ns, replicas)
		pods := waitReadyPods(t, cs, ns, replicas, 10*time.Minute)
		blocks := listBlocks(t, bc)
		seen := map[string]string{}
		perNode := map[string]int{}
		for _, p := range pods {
			if other, dup := seen[p.Status.PodIP]; dup {
				t.Errorf("address %s given to %s and %s", p.Status.PodIP, other, p.Name)
			}
			seen[p.Status.PodIP] = p.Name
			perNode[p.Spec.NodeName]++
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				t.Errorf("pod %s has no IP: %q", p.Name, p.Status.PodIP)
				continue
			}
			if owner := blockOwner(blocks, ip); owner != p.Spec.NodeName {
				t.Errorf("pod %s on %s has %s from a block of %q", p.Name, p.Spec.NodeName, ip, owner)
			}
		}
		grown := false
		for node, n := range perNode {
			count := 0
			for _, b := range blocks {
				if b.Spec.Node == node {
					count++
				}
			}
			t.Logf("%s: %d pods, %d blocks", node, n, count)
			if n > netapi.BlockCapacity(27) {
				grown = true
				if count*netapi.BlockCapacity(27) < n {
					t.Errorf("%s runs %d pods in %d blocks", node, n, count)
				}
			}
		}
		if !grown {
			t.Errorf("no node needed more than one block: %v", perNode)
		}
		eventually(t, time.Minute, "block status counts every pod", func() error {
			return checkAllocated(ctx, cs, bc)
		})
		out, err := srv.Command("ipam", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("iks ipam show: %v\n%s", err, out)
		}
		for _, b := range listBlocks(t, bc) {
			if !strings.Contains(string(out), b.Spec.CIDR) {
				t.Errorf("iks ipam show does not list %s:\n%s", b.Spec.CIDR, out)
			}
		}
		t.Logf("iks ipam show:\n%s", out)
		js, err := srv.Command("ipam", "show", "--json").Output()
		var v struct {
			Allocated int `json:"allocated"`
			Blocks    []struct {
				CIDR, Node, Owner string
			} `json:"blocks"`
		}
		if err != nil || json.Unmarshal(js, &v) != nil || v.Allocated < replicas || len(v.Blocks) < 4 {
			t.Errorf("iks ipam show --json: %v: %s", err, js)
		}
		for _, b := range v.Blocks {
			if b.Owner != "ok" {
				t.Errorf("block %s of %s: owner %s, want ok", b.CIDR, b.Node, b.Owner)
			}
		}

		if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Minute, "burst pods gone", func() error {
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil && len(l.Items) > 0 {
				err = fmt.Errorf("%d pods left", len(l.Items))
			}
			return err
		})
		eventually(t, time.Minute, "addresses of deleted pods freed in block status", func() error {
			return checkAllocated(ctx, cs, bc)
		})
	})

	t.Run("agent restart keeps the same blocks", func(t *testing.T) {
		before := nodeBlocks(t, bc, w1.Name)
		if _, err := w1.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		w1.Start()
		w1.WaitReady(2 * time.Minute)
		if after := nodeBlocks(t, bc, w1.Name); after != before {
			t.Errorf("blocks of %s changed across a restart:\nbefore %s\nafter  %s", w1.Name, before, after)
		}
	})

	t.Run("server restart keeps every block; another block size is refused", func(t *testing.T) {
		before := allBlocks(t, bc)
		if _, err := srv.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		out, err := srv.Command(srv.Args("--ipam-block-size", "26")...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "created with --ipam-block-size 27, not 26") {
			t.Errorf("server with another block size: err=%v\n%s", err, out)
		}
		srv.Start("--ipam-block-size", "27")
		srv.WaitReady(3 * time.Minute)
		if after := allBlocks(t, bc); after != before {
			t.Errorf("blocks changed across a server restart:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("deleting a stopped worker's Node releases its blocks", func(t *testing.T) {
		if nodeBlocks(t, bc, w2.Name) == "" {
			t.Fatalf("%s has no blocks to release", w2.Name)
		}
		if _, err := w2.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Nodes().Delete(ctx, w2.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Minute, "blocks of "+w2.Name+" released", func() error {
			if s := nodeBlocks(t, bc, w2.Name); s != "" {
				return fmt.Errorf("still claimed: %s", s)
			}
			return nil
		})
	})
}

func listBlocks(t *testing.T, bc *netapi.BlockClient) []*netapi.IPAMBlock {
	t.Helper()
	bs, err := bc.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// nodeBlocks renders a node's blocks as "cidr=uid ..." ("" for none).
func nodeBlocks(t *testing.T, bc *netapi.BlockClient, node string) string {
	t.Helper()
	var parts []string
	for _, b := range listBlocks(t, bc) {
		if b.Spec.Node == node {
			parts = append(parts, b.Spec.CIDR+"="+string(b.UID))
		}
	}
	return strings.Join(parts, " ")
}

// allBlocks renders every block as "cidr=node/uid ...".
func allBlocks(t *testing.T, bc *netapi.BlockClient) string {
	t.Helper()
	var parts []string
	for _, b := range listBlocks(t, bc) {
		parts = append(parts, b.Spec.CIDR+"="+b.Spec.Node+"/"+string(b.UID))
	}
	return strings.Join(parts, " ")
}

func blockOwner(blocks []*netapi.IPAMBlock, ip netip.Addr) string {
	for _, b := range blocks {
		if p, err := b.Prefix(); err == nil && p.Contains(ip) {
			return b.Spec.Node
		}
	}
	return ""
}

// checkAllocated compares each node's reported block usage with the pods
// on the pod network that hold an address on it.
func checkAllocated(ctx context.Context, cs kubernetes.Interface, bc *netapi.BlockClient) error {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	want := map[string]int{}
	for _, p := range pods.Items {
		if !p.Spec.HostNetwork && p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
			want[p.Spec.NodeName]++
		}
	}
	blocks, err := bc.List(ctx, "")
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, b := range blocks {
		got[b.Spec.Node] += b.Status.Allocated
		if b.Status.Capacity != netapi.BlockCapacity(27) {
			return fmt.Errorf("block %s reports capacity %d, want %d", b.Name, b.Status.Capacity, netapi.BlockCapacity(27))
		}
	}
	for node, n := range want {
		if got[node] != n {
			return fmt.Errorf("node %s: blocks report %d allocated, %d pods hold addresses (all: %v vs %v)", node, got[node], n, got, want)
		}
	}
	for node, n := range got {
		if want[node] != n {
			return fmt.Errorf("node %s: blocks report %d allocated, %d pods hold addresses", node, n, want[node])
		}
	}
	return nil
}

func createBurst(t *testing.T, cs kubernetes.Interface, ns string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": "burst"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "burst"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptrTo(int64(1)),
					Containers: []corev1.Container{{
						Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						// kubelet probes from the node: Ready means the pod's
						// address is reachable.
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 5},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitReadyPods(t *testing.T, cs kubernetes.Interface, ns string, want int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, timeout, fmt.Sprintf("%d pods Ready", want), func() error {
		l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, p := range l.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready != want || len(l.Items) != want {
			return fmt.Errorf("%d of %d pods Ready (%d exist)", ready, want, len(l.Items))
		}
		pods = l.Items
		return nil
	})
	return pods
}

func ptrTo[T any](v T) *T { return &v }
