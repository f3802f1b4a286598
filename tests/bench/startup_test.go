// Package bench measures iks start-up time, memory and binary size. It
// runs only under `make bench` (IKS_BENCH=1): the figures drift on shared
// 2-core machines, so they are reported, not asserted as timed tests.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

func TestStartupAndMemory(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "bench1", "10.89.0.1")

	st, err := os.Stat(n.Bin)
	if err != nil {
		t.Fatal(err)
	}
	// Baseline measured in the same run: how long the bare binary takes
	// to start and exit (Go runtime + package init of every component).
	base := timeIt(t, func() {
		if out, err := n.Command("--version").CombinedOutput(); err != nil {
			t.Fatalf("iks --version: %v: %s", err, out)
		}
	})

	first, firstNode, peak := startAndMeasure(t, n, serverAPI(n))
	firstPhases := phases(n.Log())
	idle := settleRSS(t, n, 30*time.Second)
	if _, err := n.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	off := len(n.Log())
	warm, warmNode, _ := startAndMeasure(t, n, serverAPI(n))
	warmPhases := phases(n.Log()[off:])

	report := []string{
		fmt.Sprintf("binary size            %6.1f MB   (target <= 150 MB: %.2fx; issue 12 baseline 235.5 MB: %.2fx)", mb(st.Size()), mb(st.Size())/150, mb(st.Size())/235.5),
		fmt.Sprintf("process start baseline %6.2f s    (iks --version)", base.Seconds()),
		fmt.Sprintf("first start to Node Ready %6.2f s (target <= 6 s: %.2fx; %.1fx the baseline; the Node's Ready condition, as kubectl shows it)", firstNode.Seconds(), firstNode.Seconds()/6, firstNode.Seconds()/base.Seconds()),
		fmt.Sprintf("first start to iks ready  %6.2f s (every component started: add-ons deployed, tokens written)", first.Seconds()),
		fmt.Sprintf("warm restart to Node Ready %5.2f s (target <= 3 s: %.2fx; %.2fx first start)", warmNode.Seconds(), warmNode.Seconds()/3, warmNode.Seconds()/firstNode.Seconds()),
		fmt.Sprintf("warm restart to iks ready %6.2f s", warm.Seconds()),
		"  phases, first start:  " + firstPhases,
		"  phases, warm restart: " + warmPhases,
		fmt.Sprintf("peak RSS (tree)        %6.1f MB   (during first start: %s)", mb(peak.RSS), peak.Procs),
		fmt.Sprintf("idle RSS (tree)        %6.1f MB   (target <= 600 MB: %.2fx of target)", mb(idle.RSS), mb(idle.RSS)/600),
		fmt.Sprintf("idle PSS (tree)        %6.1f MB   (kernel Pss: pages shared with other processes divided among them)", mb(idle.PSS)),
		fmt.Sprintf("idle footprint (tree)  %6.1f MB   (private pages + the shared binary pages once)", mb(idle.Footprint)),
		"idle per process:\n" + strings.TrimRight(idle.Breakdown, "\n"),
	}
	fmt.Println("\n== iks server benchmark ==\n" + strings.Join(report, "\n"))
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func timeIt(t *testing.T, f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}

// peakMem is the largest RSS of a node's tree seen during a start, and
// what it was made of: role ×count and RSS per role.
type peakMem struct {
	RSS   int64
	Procs string
}

// startAndMeasure starts the node and polls for its Ready line,
// recording the peak RSS of its process tree on the way. It also returns
// when the Node first reported Ready through the API after the start
// (Ready with a heartbeat from this start: what `kubectl get nodes`
// shows), read with api (nil until a client can be made).
func startAndMeasure(t *testing.T, n *testutil.Node, api func() kubernetes.Interface) (line, node time.Duration, peak peakMem) {
	t.Helper()
	marker := strings.Count(n.Log(), "is Ready in")
	t0 := time.Now()
	n.Start()
	var cs kubernetes.Interface
	lastAPI := time.Time{}
	for time.Since(t0) < 3*time.Minute {
		if exited, err := n.Exited(); exited {
			t.Fatalf("node exited: %v", err)
		}
		if ps := treeProcs(n.DataDir); sumRSS(ps) > peak.RSS {
			peak = peakMem{RSS: sumRSS(ps), Procs: byRole(ps)}
		}
		if node == 0 && time.Since(lastAPI) >= 100*time.Millisecond {
			lastAPI = time.Now()
			if cs == nil {
				cs = api()
			}
			if cs != nil && nodeReadySince(cs, n.Name, t0) {
				node = time.Since(t0)
			}
		}
		if line == 0 && strings.Count(n.Log(), "is Ready in") > marker {
			line = time.Since(t0)
		}
		if line != 0 && node != 0 {
			return line, node, peak
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node not Ready within 3m (ready line after %s, Node Ready after %s)", line, node)
	return 0, 0, peakMem{}
}

// nodeReadySince reports whether the Node is Ready with a heartbeat taken
// after t0 (heartbeats have second precision).
func nodeReadySince(cs kubernetes.Interface, name string, t0 time.Time) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(t0.Truncate(time.Second))
		}
	}
	return false
}

// serverAPI returns a client of n's apiserver once its admin kubeconfig
// exists (nil before).
func serverAPI(n *testutil.Node) func() kubernetes.Interface {
	return func() kubernetes.Interface {
		if _, err := os.Stat(n.Kubeconfig()); err != nil {
			return nil
		}
		return n.Client()
	}
}

// idleMem is a node tree's memory after an idle period: RSS, kernel PSS
// and the footprint estimate of treePSS, each averaged over five samples,
// and the per-process breakdown of the last sample.
type idleMem struct {
	RSS, PSS, Footprint int64
	Breakdown           string // per process and its largest mappings
}

// settleRSS waits d, then averages five samples a second apart of the
// tree's RSS and PSS.
func settleRSS(t *testing.T, n *testutil.Node, d time.Duration) idleMem {
	time.Sleep(d) // idle period being measured, not a readiness wait
	var m idleMem
	for i := 0; i < 5; i++ {
		m.RSS += treeRSS(n.DataDir)
		m.PSS += treeKernelPSS(n.DataDir)
		m.Footprint += treePSS(n.DataDir)
		time.Sleep(time.Second)
	}
	m.RSS, m.PSS, m.Footprint = m.RSS/5, m.PSS/5, m.Footprint/5
	m.Breakdown = breakdown(treeProcs(n.DataDir))
	return m
}

// treeRSS sums VmRSS of the server (and its containerd child and the
// shims): every process whose command line names the data dir.
func treeRSS(dataDir string) int64 { return treeMem(dataDir, "status", "VmRSS:") }

// treePSS estimates the tree's own footprint: every process's private
// pages plus, once, the largest shared set (the server or agent and its
// containerd child map the same binary, whose pages RSS counts twice).
// Unlike kernel PSS it does not divide pages with unrelated processes
// (other nodes of the same test run the same binary).
func treePSS(dataDir string) int64 {
	return treeMem(dataDir, "smaps_rollup", "Private_Clean:") + treeMem(dataDir, "smaps_rollup", "Private_Dirty:") +
		maxMem(dataDir, "smaps_rollup", "Shared_Clean:")
}

func maxMem(dataDir, file, field string) int64 {
	var m int64
	forTree(dataDir, func(pid string) { m = max(m, readField(pid, file, field)) })
	return m
}

func forTree(dataDir string, f func(pid string)) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dataDir) {
			f(e.Name())
		}
	}
}

func readField(pid, file, field string) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", pid, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func treeMem(dataDir, file, field string) int64 {
	var total int64
	forTree(dataDir, func(pid string) { total += readField(pid, file, field) })
	return total
}
