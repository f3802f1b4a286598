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
	// Every node is wired before any starts: a veth attached to subnet b
	// while the servers run once cut the other server on b off from the
	// servers on a for over a minute (its etcd member then had no leader).
	agent := testutil.NewNodeOn(t, "haw", nw, "b", 20)
	fourth := testutil.NewNodeOn(t, "ha4", nw, "a", 13)
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
		testutil.WaitControlPlaneReady(t, s, 4*time.Minute)
	}
	t.Logf("two servers joined in %s", time.Since(t0).Round(100*time.Millisecond))

	ec := testutil.EtcdClient(t, nw, s1, srvs)
	t.Run("three voting etcd members", func(t *testing.T) {
		names := testutil.WaitVoters(t, ec, 3, time.Minute)
		for _, s := range srvs {
			if !names[s.Name] {
				t.Errorf("no voting etcd member %s: %v", s.Name, names)
			}
		}
	})
	clients := map[string]kubernetes.Interface{}
	for _, s := range srvs {
		clients[s.Name] = testutil.ServerClient(t, nw, s1, s.IP, writeTimeout)
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
	leader := testutil.EtcdLeader(t, ec, srvs)
	agent.AsAgent("https://"+leader.IP+":6443", token)
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
				eps, _ := s1.Kubectl("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes", "-o", "yaml")
				for _, s := range srvs {
					raw, err := clients[s.Name].CoreV1().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(context.Background())
					eps += fmt.Sprintf("\n===== %s /readyz: %v\n%s", s.Name, err, raw)
					for _, l := range strings.Split(s.Log(), "\n") {
						if strings.Contains(l, "ndpoint") || strings.Contains(l, "readyz") || strings.Contains(l, "kubernetes service") || strings.Contains(l, "lease") {
							eps += l + "\n"
						}
					}
				}
				t.Fatalf("%s lacks%s after 45s (%q); load balancer log:\n%s\nthe kubernetes Service's EndpointSlices:\n%s", state, missing, data, strings.Join(lines, "\n"), eps)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	// A CoreDNS pod runs on the agent (the only node): its logs are what
	// kubectl logs reads through the apiservers.
	dnsPod := waitDNSPods(t, s1, clients[s1.Name], 1, 2*time.Minute)[0]
	t.Run("kill -9 of the etcd leader's server loses no acknowledged write, the agent stays Ready", func(t *testing.T) {
		if now := testutil.EtcdLeader(t, ec, srvs); now != leader {
			t.Logf("etcd leadership moved to %s; killing %s, the agent's server", now.Name, leader.Name)
		}
		// Killing the leader keeps a quorum only when both other members
		// are in step: wait for that, so a lagging member is named here
		// rather than seen as a write stall.
		testutil.WaitMembersInStep(t, ec, srvs, 2*time.Minute)
		w := testutil.StartWriter("w", serverClients(srvs, clients), serverNames(srvs))
		w.WaitAcksAfter(t, time.Time{}, 20, 30*time.Second)
		killed := time.Now()
		leader.Kill()
		t.Logf("killed %s (etcd leader) after %d acknowledged writes", leader.Name, w.Count())
		w.WaitAcksAfter(t, killed, 20, time.Minute)
		acked, gap := w.Stop()
		t.Logf("longest gap between acknowledged writes: %s; %d writes acknowledged", gap.Round(time.Millisecond), len(acked))
		if gap > 5*time.Second {
			t.Errorf("writes stalled %s after the kill (want ≤ 5s); the writer's latest failures:\n%s", gap, w.Failures())
		}
		var other *testutil.Node
		for _, s := range srvs {
			if s != leader {
				other = s
				break
			}
		}
		checkNoLostWrites(t, clients[other.Name], "w", acked)
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
		testutil.WaitControlPlaneReady(t, leader, 4*time.Minute)
		names := testutil.WaitVoters(t, ec, 3, time.Minute)
		if !names[leader.Name] {
			t.Errorf("%s did not rejoin etcd: %v", leader.Name, names)
		}
	})

	t.Run("kill -9 of an etcd follower's server loses no acknowledged write", func(t *testing.T) {
		testutil.WaitMembersInStep(t, ec, srvs, 2*time.Minute)
		leader := testutil.EtcdLeader(t, ec, srvs)
		var follower *testutil.Node
		for _, s := range srvs {
			if s != leader && s != s1 {
				follower = s
				break
			}
		}
		w := testutil.StartWriter("f", serverClients(srvs, clients), serverNames(srvs))
		w.WaitAcksAfter(t, time.Time{}, 20, 30*time.Second)
		killed := time.Now()
		follower.Kill()
		t.Logf("killed %s (etcd follower) after %d acknowledged writes", follower.Name, w.Count())
		w.WaitAcksAfter(t, killed, 20, time.Minute)
		acked, gap := w.Stop()
		t.Logf("longest gap between acknowledged writes: %s; %d writes acknowledged", gap.Round(time.Millisecond), len(acked))
		if gap > 5*time.Second {
			t.Errorf("writes stalled %s after the kill (want ≤ 5s); the writer's latest failures:\n%s", gap, w.Failures())
		}
		checkNoLostWrites(t, clients[leader.Name], "f", acked)
		follower.Start("--disable-agent", "--server", url, "--token", token)
		testutil.WaitControlPlaneReady(t, follower, 4*time.Minute)
		if names := testutil.WaitVoters(t, ec, 3, time.Minute); !names[follower.Name] {
			t.Errorf("%s did not rejoin etcd: %v", follower.Name, names)
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
		testutil.WaitMembersInStep(t, ec, srvs, 2*time.Minute)
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
		names := testutil.WaitVoters(t, ec, 2, 30*time.Second)
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
		testutil.WaitControlPlaneReady(t, old, 4*time.Minute)
		if names := testutil.WaitVoters(t, ec, 3, time.Minute); !names[old.Name] {
			t.Errorf("%s did not rejoin etcd: %v", old.Name, names)
		}
		eventually(t, 30*time.Second, "the rejoined "+old.Name+"'s apiserver serving the cluster's data", func() error {
			_, err := clients[old.Name].CoreV1().ConfigMaps("default").Get(context.Background(), "from-ha3", metav1.GetOptions{})
			return err
		})
	})

	t.Run("a fourth server joins; iks server remove takes a stopped one out of etcd", func(t *testing.T) {
		testutil.WaitMembersInStep(t, ec, srvs, 2*time.Minute)
		fourth.Start("--disable-agent", "--server", url, "--token", token)
		testutil.WaitControlPlaneReady(t, fourth, 4*time.Minute)
		if names := testutil.WaitVoters(t, ec, 4, time.Minute); !names[fourth.Name] {
			t.Fatalf("%s is not a voting etcd member: %v", fourth.Name, names)
		}
		if !logLine(fourth, "an even number tolerates no more failures than 3") {
			t.Errorf("%s, the fourth server, did not warn about an even number of servers", fourth.Name)
		}
		c4 := testutil.ServerClient(t, nw, s1, fourth.IP, writeTimeout)
		if _, err := c4.CoreV1().ConfigMaps("default").Get(context.Background(), "from-ha3", metav1.GetOptions{}); err != nil {
			t.Errorf("the fourth server's apiserver: %v", err)
		}

		if out, err := s1.Command("server", "remove", s1.Name).CombinedOutput(); err == nil || !strings.Contains(string(out), "own etcd member") {
			t.Errorf("removing the server's own member: %v\n%s", err, out)
		}
		victim := srvs[2]
		if _, err := victim.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		out, err := s1.Command("server", "remove", victim.Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "3 members remain") || strings.Contains(string(out), "odd number") {
			t.Fatalf("iks server remove %s (3 remain, no even-number warning): %v\n%s", victim.Name, err, out)
		}
		names := testutil.WaitVoters(t, ec, 3, 30*time.Second)
		if names[victim.Name] {
			t.Errorf("%s still an etcd member: %v", victim.Name, names)
		}
		if _, err := clients[s1.Name].CoreV1().ConfigMaps("default").Create(context.Background(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-remove"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("write after the removal: %v", err)
		}
	})
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

// checkNoLostWrites requires every acknowledged write of the writer with
// prefix to be readable through cs.
func checkNoLostWrites(t *testing.T, cs kubernetes.Interface, prefix string, acked []string) {
	t.Helper()
	list, err := cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{LabelSelector: testutil.WriterLabel + "=" + prefix})
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
}

// writeTimeout: the test's clients give up on a request after 2 s and
// retry at the next server, as a careful client does: a write in flight
// to a survivor when the etcd leader dies otherwise waits out etcd's
// request timeout (5 s + 2 election timeouts).
const writeTimeout = 2 * time.Second

// serverClients lists the clients of srvs in their order.
func serverClients(srvs []*testutil.Node, clients map[string]kubernetes.Interface) []kubernetes.Interface {
	var out []kubernetes.Interface
	for _, s := range srvs {
		out = append(out, clients[s.Name])
	}
	return out
}

// serverNames lists the names of srvs in their order.
func serverNames(srvs []*testutil.Node) []string {
	var out []string
	for _, s := range srvs {
		out = append(out, s.Name)
	}
	return out
}
