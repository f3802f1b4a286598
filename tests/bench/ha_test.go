package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// haKills is how many times TestHABench kills the etcd leader's server.
const haKills = 10

// serverCPUs is the size of each server's "machine" while the write
// throughput is measured: one server alone and each of three get the same
// CPU quota, as servers on machines of one size (three unlimited servers
// on this 2-core VM would share its cores, a third of a machine each).
const serverCPUs = 0.5

// TestHABench (issue 15's rows): apiserver write throughput with one
// server, then with three (same run, same writers); snapshot save and
// --cluster-reset restore of 10,000 objects; and, over 10 kill -9s of the
// etcd leader's server during a stream of writes, the time from the kill
// to the next acknowledged write (p50/p99) and acknowledged writes lost.
func TestHABench(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "hb", 83)
	var srvs []*testutil.Node
	for i, sub := range []string{"a", "a", "b"} {
		s := testutil.NewNodeOn(t, fmt.Sprintf("hb%d", i+1), nw, sub, 10+i)
		s.CPU = testutil.NewCPUGroup(t, fmt.Sprintf("iks-test-hb%d-machine", i+1))
		srvs = append(srvs, s)
	}
	s1 := srvs[0]
	s1.Start("--disable-agent", "--cluster-init")
	testutil.WaitControlPlaneReady(t, s1, 4*time.Minute)
	token := readToken(t, s1)
	url := "https://" + s1.IP + ":6443"
	// clients wait for answers (throughput); retrying clients give up on
	// a request after 2 s and go to the next server (the kills).
	clients, retrying := map[string]kubernetes.Interface{}, map[string]kubernetes.Interface{}
	for _, s := range srvs {
		clients[s.Name] = testutil.ServerClient(t, nw, s1, s.IP, 30*time.Second)
		retrying[s.Name] = testutil.ServerClient(t, nw, s1, s.IP, 2*time.Second)
	}
	c1 := clients[s1.Name]

	// Snapshot save and restore of 10,000 objects.
	const objects = 10000
	fillConfigMaps(t, c1, objects)
	t0 := time.Now()
	out, err := s1.Command("etcd-snapshot", "save").CombinedOutput()
	if err != nil {
		t.Fatalf("etcd-snapshot save: %v\n%s", err, out)
	}
	save := time.Since(t0)
	m := regexp.MustCompile(`saved (\S+) \((\d+) bytes`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("save output:\n%s", out)
	}
	if _, err := s1.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if out, err := s1.Command(s1.Args("--cluster-reset", "--cluster-reset-restore-path", m[1])...).CombinedOutput(); err != nil {
		t.Fatalf("--cluster-reset-restore-path: %v\n%s", err, out)
	}
	restore := time.Since(t0)
	t0 = time.Now()
	s1.Start("--disable-agent", "--cluster-init")
	testutil.WaitControlPlaneReady(t, s1, 4*time.Minute)
	back := time.Since(t0)
	if n := countConfigMaps(t, c1, "fill"); n != objects {
		t.Fatalf("after the restore %d of %d objects", n, objects)
	}
	// One server's throughput on the same data as the three servers' below.
	s1.CPU.Limit(t, serverCPUs)
	one := writeThroughput(t, []kubernetes.Interface{c1}, "one")
	s1.CPU.Limit(t, 0)

	// Three servers.
	for _, s := range srvs[1:] {
		s.Start("--disable-agent", "--server", url, "--token", token)
	}
	for _, s := range srvs[1:] {
		testutil.WaitControlPlaneReady(t, s, 4*time.Minute)
	}
	ec := testutil.EtcdClient(t, nw, s1, srvs)
	testutil.WaitVoters(t, ec, 3, 2*time.Minute)
	testutil.WaitMembersInStep(t, ec, srvs, 2*time.Minute)
	var all, allRetrying []kubernetes.Interface
	var names []string
	for _, s := range srvs {
		all, names = append(all, clients[s.Name]), append(names, s.Name)
		allRetrying = append(allRetrying, retrying[s.Name])
	}
	for _, s := range srvs {
		s.CPU.Limit(t, serverCPUs)
	}
	three := writeThroughput(t, all, "three")
	for _, s := range srvs {
		s.CPU.Limit(t, 0)
	}

	// Kill the etcd leader's server during writes, haKills times.
	var gaps, nexts []time.Duration
	lost := 0
	for k := 0; k < haKills; k++ {
		testutil.WaitMembersInStep(t, ec, srvs, 3*time.Minute)
		leader := testutil.EtcdLeader(t, ec, srvs)
		w := testutil.StartWriter(fmt.Sprintf("k%d", k), allRetrying, names)
		w.WaitAcksAfter(t, time.Time{}, 10, time.Minute)
		killed := time.Now()
		leader.Kill()
		next := w.WaitAcksAfter(t, killed, 1, 2*time.Minute)
		nexts = append(nexts, next.Sub(killed))
		w.WaitAcksAfter(t, killed, 10, 2*time.Minute)
		// The longest wait between two acknowledged writes: it spans the
		// kill (the writes before it came back-to-back).
		acked, gap := w.Stop()
		gaps = append(gaps, gap)
		lost += len(acked) - countPresent(t, clients, leader, fmt.Sprintf("k%d", k), acked)
		if leader == s1 {
			leader.Start("--disable-agent", "--cluster-init")
		} else {
			leader.Start("--disable-agent", "--server", url, "--token", token)
		}
		testutil.WaitControlPlaneReady(t, leader, 4*time.Minute)
	}
	p50, p99 := percentiles(gaps)
	n50, n99 := percentiles(nexts)

	t.Logf("HA: apiserver writes/s, 3 servers %.0f vs 1 server %.0f = %.2fx (target ≥ 0.7x; 8 writers, creates of small ConfigMaps; each server a machine of %.1f CPU)", three, one, three/one, serverCPUs)
	t.Logf("HA: %d objects: etcd-snapshot save %s (%s bytes), --cluster-reset-restore-path %s, then control plane ready %s",
		objects, save.Round(10*time.Millisecond), m[2], restore.Round(10*time.Millisecond), back.Round(10*time.Millisecond))
	t.Logf("HA: kill -9 of the etcd leader's server during writes (a client retrying at the next server after 2 s), over %d kills: "+
		"kill → next acknowledged write p50 %s p99 (max) %s; longest wait between acknowledged writes p50 %s p99 (max) %s (target ≤ 3 s); "+
		"acknowledged writes lost: %d (target 0). A write in flight at the kill, not retried, waits etcd's request timeout (5 s + 2 election timeouts = 7 s)",
		haKills, n50, n99, p50, p99, lost)
	if lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// readToken reads the server's join token file.
func readToken(t *testing.T, s *testutil.Node) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// writeThroughput runs 8 writers creating ConfigMaps for 10 s, writer i
// through clients[i % len], and returns acknowledged creates per second.
func writeThroughput(t *testing.T, clients []kubernetes.Interface, tag string) float64 {
	t.Helper()
	const writers, d = 8, 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cs := clients[i%len(clients)]
			for n := 0; ctx.Err() == nil; n++ {
				_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tp-%s-%d-%d", tag, i, n), Labels: map[string]string{"bench": "tp"}},
					Data:       map[string]string{"k": "v"}}, metav1.CreateOptions{})
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded):
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}(i)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of the %s-server writes failed, the first: %v", f, tag, firstErr.Load())
	}
	return float64(ok.Load()) / d.Seconds()
}

// fillConfigMaps creates n ConfigMaps labelled bench=fill, 16 at a time.
func fillConfigMaps(t *testing.T, cs kubernetes.Interface, n int) {
	t.Helper()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := next.Add(1) - 1
				if j >= int64(n) || firstErr.Load() != nil {
					return
				}
				if _, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%05d", j), Labels: map[string]string{"bench": "fill"}},
					Data:       map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatalf("filling %d ConfigMaps: %v", n, err)
	}
}

// countConfigMaps counts the ConfigMaps labelled bench=value.
func countConfigMaps(t *testing.T, cs kubernetes.Interface, value string) int {
	t.Helper()
	n, cont := 0, ""
	for {
		list, err := cs.CoreV1().ConfigMaps("default").List(context.Background(),
			metav1.ListOptions{LabelSelector: "bench=" + value, Limit: 2000, Continue: cont})
		if err != nil {
			t.Fatal(err)
		}
		n += len(list.Items)
		if cont = list.Continue; cont == "" {
			return n
		}
	}
}

// countPresent counts how many of the acknowledged names a surviving
// server lists.
func countPresent(t *testing.T, clients map[string]kubernetes.Interface, dead *testutil.Node, prefix string, acked []string) int {
	t.Helper()
	var cs kubernetes.Interface
	for name, c := range clients {
		if name != dead.Name {
			cs = c
			break
		}
	}
	list, err := cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{LabelSelector: testutil.WriterLabel + "=" + prefix})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range list.Items {
		have[c.Name] = true
	}
	n := 0
	for _, a := range acked {
		if have[a] {
			n++
		}
	}
	return n
}
