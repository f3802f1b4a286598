package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestHAServers runs three servers on embedded etcd: the first with
// --cluster-init, two joining it with --server and the server token. It
// checks the etcd membership, that a joiner with other cluster settings is
// refused before writing anything, and that after kill -9 of the etcd
// leader's server the API keeps answering through the others with no
// acknowledged write lost, and the killed server rejoins.
func TestHAServers(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "ha", 84)
	var srvs []*testutil.Node
	for i, sub := range []string{"a", "a", "b"} {
		srvs = append(srvs, testutil.NewNodeOn(t, fmt.Sprintf("ha%d", i+1), nw, sub, 10+i))
	}
	s1 := srvs[0]
	s1.Start("--disable-agent", "--cluster-init")
	token := waitTokenFile(t, s1, 3*time.Minute)
	url := "https://" + s1.IP + ":6443"

	t.Run("a joiner with another --cluster-cidr is refused, nothing written", func(t *testing.T) {
		bad := testutil.NewNodeOn(t, "ha9", nw, "b", 19)
		out, err := bad.Command(bad.Args("--disable-agent", "--server", url, "--token", token, "--cluster-cidr", "10.210.0.0/16")...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--cluster-cidr 172.30.0.0/16") {
			t.Errorf("joiner with another --cluster-cidr: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(bad.DataDir, "server", "tls")); !os.IsNotExist(err) {
			t.Errorf("refused joiner wrote its PKI dir: %v", err)
		}
	})

	t0 := time.Now()
	for _, s := range srvs[1:] {
		s.Start("--disable-agent", "--server", url, "--token", token)
	}
	for _, s := range srvs {
		waitControlPlaneReady(t, s)
	}
	t.Logf("two servers joined in %s", time.Since(t0).Round(100*time.Millisecond))

	ec := etcdClient(t, nw, s1, srvs)
	t.Run("three voting etcd members", func(t *testing.T) {
		names := waitVoters(t, ec, 3, time.Minute)
		for _, s := range srvs {
			if !names[s.Name] {
				t.Errorf("no voting etcd member %s: %v", s.Name, names)
			}
		}
	})
	clients := map[string]kubernetes.Interface{}
	for _, s := range srvs {
		clients[s.Name] = serverClient(t, nw, s1, s.IP)
	}
	t.Run("every apiserver serves the same data", func(t *testing.T) {
		if _, err := clients[srvs[2].Name].CoreV1().ConfigMaps("default").Create(context.Background(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-ha3"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := clients[s1.Name].CoreV1().ConfigMaps("default").Get(context.Background(), "from-ha3", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("one server runs iks's own controllers", func(t *testing.T) {
		l := waitControllersLeader(t, clients[s1.Name], srvs, nil, time.Minute)
		checkOneControllersLeader(t, l, srvs)
	})

	// The agent joins the etcd leader's server: killing it must go
	// unnoticed through the agent's load balancer.
	leader := etcdLeader(t, ec, srvs)
	agent := testutil.NewNodeOn(t, "haw", nw, "b", 20).AsAgent("https://"+leader.IP+":6443", token)
	agent.Start()
	agent.WaitReady(4 * time.Minute)
	t.Run("the agent's load balancer learns every apiserver", func(t *testing.T) {
		state := filepath.Join(agent.DataDir, "agent", "etc", "apiservers.json")
		deadline := time.Now().Add(45 * time.Second)
		for {
			data, _ := os.ReadFile(state)
			missing := ""
			for _, s := range srvs {
				if !strings.Contains(string(data), s.IP+":6443") {
					missing += " " + s.IP
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				var lines []string
				for _, l := range strings.Split(agent.Log(), "\n") {
					if strings.Contains(l, "apiserver-lb") {
						lines = append(lines, l)
					}
				}
				t.Fatalf("%s lacks%s after 45s (%q); load balancer log:\n%s", state, missing, data, strings.Join(lines, "\n"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	// A CoreDNS pod runs on the agent (the only node): its logs are what
	// kubectl logs reads through the apiservers.
	dnsPod := waitDNSPods(t, s1, clients[s1.Name], 1, 2*time.Minute)[0]
	t.Run("kill -9 of the etcd leader's server loses no acknowledged write, the agent stays Ready", func(t *testing.T) {
		if now := etcdLeader(t, ec, srvs); now != leader {
			t.Logf("etcd leadership moved to %s; killing %s, the agent's server", now.Name, leader.Name)
		}
		// Killing the leader keeps a quorum only when both other members
		// are in step: wait for that, so a lagging member is named here
		// rather than seen as a write stall.
		waitMembersInStep(t, ec, srvs, 2*time.Minute)
		w := startWriter(srvs, clients)
		w.waitAcks(t, 20, 30*time.Second)
		killed := time.Now()
		leader.Kill()
		t.Logf("killed %s (etcd leader) after %d acknowledged writes", leader.Name, w.count())
		w.waitAcksAfter(t, killed, 20, time.Minute)
		acked, gap := w.stop()
		t.Logf("longest gap between acknowledged writes: %s; %d writes acknowledged", gap.Round(time.Millisecond), len(acked))
		if gap > 5*time.Second {
			t.Errorf("writes stalled %s after the kill (want ≤ 5s); the writer's latest failures:\n%s", gap, strings.Join(w.errs, "\n"))
		}
		var other *testutil.Node
		for _, s := range srvs {
			if s != leader {
				other = s
				break
			}
		}
		list, err := clients[other.Name].CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{LabelSelector: "ha-writer=1"})
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, c := range list.Items {
			have[c.Name] = true
		}
		for _, n := range acked {
			if !have[n] {
				t.Errorf("acknowledged write %s lost", n)
			}
		}
		checkAgentAlive(t, clients[other.Name], agent, killed)
		// The agent keeps a tunnel to every server: each surviving
		// apiserver reaches its kubelet while its own server is down.
		for _, s := range srvs {
			if s != leader {
				checkPodLogsThrough(t, clients[s.Name], s.Name, dnsPod)
			}
		}
		if leader == s1 {
			leader.Start("--disable-agent", "--cluster-init")
		} else {
			leader.Start("--disable-agent", "--server", url, "--token", token)
		}
		waitControlPlaneReady(t, leader)
		names := waitVoters(t, ec, 3, time.Minute)
		if !names[leader.Name] {
			t.Errorf("%s did not rejoin etcd: %v", leader.Name, names)
		}
	})

	t.Run("kill -9 of the iks controllers' leader: another server takes over; deleting its Node drops its etcd member", func(t *testing.T) {
		old := waitControllersLeader(t, clients[s1.Name], srvs, nil, time.Minute)
		var alive []*testutil.Node
		for _, s := range srvs {
			if s != old {
				alive = append(alive, s)
			}
		}
		cs := clients[alive[0].Name]
		waitMembersInStep(t, ec, srvs, 2*time.Minute)
		killed := time.Now()
		old.Kill()
		next := waitControllersLeader(t, cs, srvs, old, 45*time.Second)
		t.Logf("%s took over the iks controllers from %s %s after the kill", next.Name, old.Name, time.Since(killed).Round(100*time.Millisecond))
		checkLBHandledBy(t, cs, "lb-after-failover", next, alive)

		// The killed server's Node (servers here run no agent: stand one
		// in, labelled as a server's) is deleted: the leader removes the
		// stopped server's etcd member.
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: old.Name, Labels: map[string]string{"node-role.kubernetes.io/control-plane": "true"}}}
		if _, err := cs.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Nodes().Delete(context.Background(), old.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		names := waitVoters(t, ec, 2, 30*time.Second)
		if names[old.Name] {
			t.Errorf("%s still an etcd member after its Node was deleted: %v", old.Name, names)
		}
		if !logLine(next, "removed its etcd member", "node="+old.Name+" ") {
			t.Errorf("the leader %s did not log removing %s's etcd member", next.Name, old.Name)
		}
		// It comes back as a new member, with an empty data dir.
		if err := os.RemoveAll(old.DataDir); err != nil {
			t.Fatal(err)
		}
		old.Start("--disable-agent", "--server", "https://"+next.IP+":6443", "--token", token)
		waitControlPlaneReady(t, old)
		if names := waitVoters(t, ec, 3, time.Minute); !names[old.Name] {
			t.Errorf("%s did not rejoin etcd: %v", old.Name, names)
		}
		eventually(t, 30*time.Second, "the rejoined "+old.Name+"'s apiserver serving the cluster's data", func() error {
			_, err := clients[old.Name].CoreV1().ConfigMaps("default").Get(context.Background(), "from-ha3", metav1.GetOptions{})
			return err
		})
	})

	t.Run("iks server remove takes a stopped server out of etcd", func(t *testing.T) {
		if out, err := s1.Command("server", "remove", s1.Name).CombinedOutput(); err == nil || !strings.Contains(string(out), "own etcd member") {
			t.Errorf("removing the server's own member: %v\n%s", err, out)
		}
		victim := srvs[2]
		if _, err := victim.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		out, err := s1.Command("server", "remove", victim.Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "2 members remain") || !strings.Contains(string(out), "odd number") {
			t.Fatalf("iks server remove %s: %v\n%s", victim.Name, err, out)
		}
		names := waitVoters(t, ec, 2, 30*time.Second)
		if names[victim.Name] {
			t.Errorf("%s still an etcd member: %v", victim.Name, names)
		}
		if _, err := clients[s1.Name].CoreV1().ConfigMaps("default").Create(context.Background(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-remove"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("write after the removal: %v", err)
		}
	})
}

// waitControlPlaneReady waits for a --disable-agent server's ready line.
func waitControlPlaneReady(t *testing.T, n *testutil.Node) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if exited, err := n.Exited(); exited {
			log := n.Log()
			if len(log) > 5000 {
				log = log[len(log)-5000:]
			}
			t.Fatalf("%s exited: %v\n%s", n.Name, err, log)
		}
		log := n.Log()
		if i := strings.LastIndex(log, "===== start"); i >= 0 && strings.Contains(log[i:], "control plane ready in") {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("control plane of %s not ready after 4m", n.Name)
}

// serverClient is an admin client of the apiserver at ip, dialled from
// the router namespace (alive whichever server dies).
func serverClient(t *testing.T, nw *testutil.Network, s1 *testutil.Node, ip string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s1.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + ip + ":6443"
	cfg.Dial = nw.Router.DialContext
	// A client that gives up on a request after 2 s and retries at the
	// next server: a write in flight when the etcd leader dies otherwise
	// waits out etcd's request timeout (5 s + 2 election timeouts).
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// etcdClient reaches every server's etcd from the router namespace.
func etcdClient(t *testing.T, nw *testutil.Network, s1 *testutil.Node, srvs []*testutil.Node) *clientv3.Client {
	t.Helper()
	tls := filepath.Join(s1.DataDir, "server", "tls")
	tc, err := transport.TLSInfo{CertFile: filepath.Join(tls, "apiserver-etcd-client.crt"),
		KeyFile: filepath.Join(tls, "apiserver-etcd-client.key"), TrustedCAFile: filepath.Join(tls, "etcd", "ca.crt")}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, s := range srvs {
		eps = append(eps, "https://"+s.IP+":2379")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return nw.Router.DialContext(ctx, "tcp", addr)
		})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitVoters waits for want started voting members and returns their names.
func waitVoters(t *testing.T, c *clientv3.Client, want int, timeout time.Duration) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		list, err := c.MemberList(ctx)
		cancel()
		if err == nil {
			names := map[string]bool{}
			for _, m := range list.Members {
				if !m.IsLearner && m.Name != "" {
					names[m.Name] = true
				}
			}
			if len(names) == want && len(list.Members) == want {
				return names
			}
			last = fmt.Sprint(list.Members)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("not %d voting etcd members after %s: %s", want, timeout, last)
	return nil
}

// waitMembersInStep waits until every server's etcd member answers, sees
// the same leader and has applied within 50 entries of the leader.
func waitMembersInStep(t *testing.T, c *clientv3.Client, srvs []*testutil.Node, timeout time.Duration) {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		last = membersOutOfStep(c, srvs)
		if last == "" {
			t.Logf("etcd members in step after %s", time.Since(t0).Round(time.Millisecond))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("etcd members not in step after %s: %s", timeout, last)
}

// membersOutOfStep says what keeps the members from being in step ("" if
// nothing does).
func membersOutOfStep(c *clientv3.Client, srvs []*testutil.Node) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var leader uint64
	var applied []uint64
	for _, s := range srvs {
		st, err := c.Status(ctx, "https://"+s.IP+":2379")
		if err != nil {
			return fmt.Sprintf("%s: %v", s.Name, err)
		}
		if len(st.Errors) > 0 {
			return fmt.Sprintf("%s: %v", s.Name, st.Errors)
		}
		if st.IsLearner {
			return s.Name + " is a learner"
		}
		if leader != 0 && st.Leader != leader {
			return fmt.Sprintf("%s sees leader %x, another member %x", s.Name, st.Leader, leader)
		}
		leader = st.Leader
		applied = append(applied, st.RaftAppliedIndex)
	}
	if lo, hi := slices.Min(applied), slices.Max(applied); hi-lo > 50 {
		return fmt.Sprintf("applied indexes %v differ by %d", applied, hi-lo)
	}
	return ""
}

// etcdLeader returns the server whose member leads etcd.
func etcdLeader(t *testing.T, c *clientv3.Client, srvs []*testutil.Node) *testutil.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range srvs {
		st, err := c.Status(ctx, "https://"+s.IP+":2379")
		if err == nil && st.Leader == st.Header.MemberId {
			return s
		}
	}
	t.Fatal("no etcd leader found")
	return nil
}

// writer creates ConfigMaps one after another through whichever apiserver
// answers, recording each acknowledged one.
type writer struct {
	mu    sync.Mutex
	acked []string
	times []time.Time
	errs  []string // the latest failures, for the failure message
	done  chan struct{}
	wg    sync.WaitGroup
}

func startWriter(srvs []*testutil.Node, clients map[string]kubernetes.Interface) *writer {
	w := &writer{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		cur := 0
		for i := 0; ; i++ {
			name := fmt.Sprintf("w-%05d", i)
			for {
				select {
				case <-w.done:
					return
				default:
				}
				cs := clients[srvs[cur].Name]
				_, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"ha-writer": "1"}}}, metav1.CreateOptions{})
				if err == nil || strings.Contains(err.Error(), "already exists") {
					w.mu.Lock()
					w.acked, w.times = append(w.acked, name), append(w.times, time.Now())
					w.mu.Unlock()
					break
				}
				w.mu.Lock()
				w.errs = append(w.errs, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), srvs[cur].Name, err))
				if len(w.errs) > 12 {
					w.errs = w.errs[1:]
				}
				w.mu.Unlock()
				cur = (cur + 1) % len(srvs)
			}
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) waitAcks(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	w.waitAcksAfter(t, time.Time{}, n, timeout)
}

// waitAcksAfter waits for n writes acknowledged after since.
func (w *writer) waitAcksAfter(t *testing.T, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		c := 0
		for _, at := range w.times {
			if at.After(since) {
				c++
			}
		}
		w.mu.Unlock()
		if c >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("fewer than %d writes acknowledged within %s; the latest failures:\n%s", n, timeout, strings.Join(w.errs, "\n"))
}

// stop ends the writer and returns the acknowledged names and the longest
// gap between two acknowledgements.
func (w *writer) stop() ([]string, time.Duration) {
	close(w.done)
	w.wg.Wait()
	var gap time.Duration
	for i := 1; i < len(w.times); i++ {
		gap = max(gap, w.times[i].Sub(w.times[i-1]))
	}
	return w.acked, gap
}

// checkAgentAlive requires the agent's kubelet to renew its node lease
// after the kill (it reaches another apiserver) and its node to be Ready.
func checkAgentAlive(t *testing.T, cs kubernetes.Interface, agent *testutil.Node, killed time.Time) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		lease, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, agent.Name, metav1.GetOptions{})
		cancel()
		if err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(killed.Add(time.Second)) {
			node, err := cs.CoreV1().Nodes().Get(context.Background(), agent.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					t.Errorf("node %s is %s after the kill: %s", agent.Name, c.Status, c.Message)
				}
			}
			t.Logf("%s renewed its lease %s after the kill", agent.Name, lease.Spec.RenewTime.Sub(killed).Round(100*time.Millisecond))
			if !strings.Contains(agent.Log(), "apiserver switched") {
				t.Errorf("the agent's load balancer did not log a switch")
			}
			return
		} else if err != nil {
			last = err.Error()
		} else if lease.Spec.RenewTime != nil {
			last = "last renewal " + lease.Spec.RenewTime.String()
		}
		time.Sleep(time.Second)
	}
	t.Errorf("agent %s did not renew its node lease within 45s of the kill (%s)", agent.Name, last)
}
