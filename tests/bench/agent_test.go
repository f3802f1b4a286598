package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestAgentJoin measures `iks agent` start to node Ready, the agent's idle
// RSS, and `kubectl exec` through the master tunnel next to a plain API
// request (`kubectl get`) measured the same way in the same run.
func TestAgentJoin(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	// pprof inside every node's own network namespace (loopback there).
	t.Setenv("IKS_PPROF", pprofAddr)
	nw := testutil.NewNetwork(t, "bench", 92)
	srv := testutil.NewNodeOn(t, "bsrv", nw, "a", 1)
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	tok, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	w := testutil.NewNodeOn(t, "bw1", nw, "b", 1).AsAgent("https://"+srv.IP+":6443", strings.TrimSpace(string(tok)))
	srvCS := srv.Client()
	csrs, err := csrTimes(srvCS)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	join, joinNode, peak := startAndMeasure(t, w, func() kubernetes.Interface { return srvCS })
	csrLines := csrs(t0)
	joinPhases := phases(w.Log())
	if os.Getenv("IKS_BENCH_AGENT_LOG") != "" {
		fmt.Println(w.Log())
	}
	idle := settleRSS(t, w, 20*time.Second)
	heap := heapTop(t, w, 12)

	cs := srv.Client()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{NodeName: w.Name,
		Containers: []corev1.Container{{Name: "pause", Image: "iks.local/pause:1", ImagePullPolicy: corev1.PullNever}}}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod not running")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The pause image has no program to exec but /pause; `exec ... /pause -v`
	// prints its version and exits: a full round trip through the tunnel
	// to the kubelet and the runtime.
	get := median(t, 10, func() error { _, err := srv.Kubectl("get", "pod", "p"); return err })
	exec := median(t, 10, func() error { _, err := srv.Kubectl("exec", "p", "--", "/pause", "-v"); return err })
	fmt.Printf("\n== iks agent benchmark ==\n"+
		"agent start to Node Ready %5.2f s   (target <= 2 s: %.2fx; the Node's Ready condition, as kubectl shows it)\n"+
		"agent start to iks ready %6.2f s   (every agent component started)\n"+
		"  phases: %s\n"+
		"  CSRs (seen by a watch, from agent start):\n%s"+
		"agent peak RSS (tree)    %6.1f MB   (%s)\n"+
		"agent idle RSS (tree)    %6.1f MB   (target <= 250 MB: %.2fx; issue 12 baseline 479 MB: %.2fx)\n"+
		"agent idle PSS (tree)    %6.1f MB   (kernel Pss: pages shared with other processes divided among them)\n"+
		"agent idle footprint     %6.1f MB   (%.2fx target; private pages + the shared binary pages once)\n"+
		"%s"+
		"agent Go heap in use (pprof, top):\n%s"+
		"kubectl get (baseline)   %6.0f ms\n"+
		"kubectl exec via tunnel  %6.0f ms   (%.2fx the baseline)\n",
		joinNode.Seconds(), joinNode.Seconds()/2, join.Seconds(), joinPhases, csrLines, mb(peak.RSS), peak.Procs, mb(idle.RSS), mb(idle.RSS)/250, mb(idle.RSS)/479,
		mb(idle.PSS), mb(idle.Footprint), mb(idle.Footprint)/250, idle.Breakdown, heap,
		ms(get), ms(exec), exec.Seconds()/get.Seconds())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(t *testing.T, n int, f func() error) time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}
