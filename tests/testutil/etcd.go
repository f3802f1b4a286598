package testutil

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Helpers for clusters of several servers (HA): etcd's view of them,
// clients of each apiserver, and waits on the control plane.

// WaitControlPlaneReady waits for a --disable-agent server's ready line
// since its last start.
func WaitControlPlaneReady(t testing.TB, n *Node, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
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
	t.Fatalf("control plane of %s not ready after %s", n.Name, timeout)
}

// ServerClient is an admin client (s1's admin kubeconfig) of the apiserver
// at ip, dialled from the router namespace so that it outlives any server,
// with a per-request timeout.
func ServerClient(t testing.TB, nw *Network, s1 *Node, ip string, timeout time.Duration) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s1.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + ip + ":6443"
	cfg.Dial = nw.Router.DialContext
	cfg.Timeout = timeout
	cfg.QPS = -1 // no client-side rate limit: the servers' own limits are measured
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// EtcdClient reaches every server's etcd from the router namespace with
// s1's apiserver client certificate.
func EtcdClient(t testing.TB, nw *Network, s1 *Node, srvs []*Node) *clientv3.Client {
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

// WaitVoters waits for want started voting members (and no other member)
// and returns their names.
func WaitVoters(t testing.TB, c *clientv3.Client, want int, timeout time.Duration) map[string]bool {
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

// EtcdLeader returns the server whose member leads etcd.
func EtcdLeader(t testing.TB, c *clientv3.Client, srvs []*Node) *Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		for _, s := range srvs {
			st, err := c.Status(ctx, "https://"+s.IP+":2379")
			if err == nil && st.Leader == st.Header.MemberId {
				cancel()
				return s
			}
		}
		cancel()
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatal("no etcd leader found in 30s")
	return nil
}

// WaitMembersInStep waits until every server's etcd member answers, is a
// voter, sees the same leader and has applied within 50 entries of the
// others: only then does killing any one member keep a quorum.
func WaitMembersInStep(t testing.TB, c *clientv3.Client, srvs []*Node, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if last = membersOutOfStep(c, srvs); last == "" {
			return time.Since(t0)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("etcd members not in step after %s: %s", timeout, last)
	return 0
}

// membersOutOfStep says what keeps the members from being in step ("" if
// nothing does).
func membersOutOfStep(c *clientv3.Client, srvs []*Node) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var leader uint64
	var applied []uint64
	for _, s := range srvs {
		st, err := c.Status(ctx, "https://"+s.IP+":2379")
		switch {
		case err != nil:
			return fmt.Sprintf("%s: %v", s.Name, err)
		case len(st.Errors) > 0:
			return fmt.Sprintf("%s: %v", s.Name, st.Errors)
		case st.IsLearner:
			return s.Name + " is a learner"
		case st.Leader == 0:
			return s.Name + " sees no leader"
		case leader != 0 && st.Leader != leader:
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
