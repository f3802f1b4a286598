package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/iks-dev/iks/tests/testutil"
)

// lbKills is how many holders each layout of TestLBFailoverTopology
// kills.
const lbKills = 10

// TestLBFailoverTopology measures LoadBalancer failover where a portable
// subnet has 3 eligible nodes: the IP's holder vanishes (kill -9 and link
// cut, no FIN) until requests from a client on that subnet succeed again,
// sustained (20 new connections in a row over 1 s), p50 and worst of 10
// kills. Layouts, same run: "one subnet" (every node on the subnet, the
// baseline) and "two subnets" (the 3 eligible nodes on subnet b, another
// worker and the server on subnet a, which must never take the IP). The
// backend runs on the server, which is never killed, so the figure is the
// IP's move, not the endpoint removal of a dead node (the node controller's
// grace period, a separate matter).
func TestLBFailoverTopology(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	one := lbFailoverLayout(t, "lbo", 97, "a", nil)
	two := lbFailoverLayout(t, "lbt", 98, "b", []string{"a"})
	p := func(d []time.Duration, q float64) float64 {
		return d[min(len(d)-1, int(q*float64(len(d))))].Seconds()
	}
	fmt.Printf("\n== LoadBalancer failover by topology (%d kills each; sustained success from a client on the subnet) ==\n", lbKills)
	fmt.Printf("one subnet, 3 eligible nodes (baseline)   p50 %5.2f s  worst %5.2f s\n", p(one, 0.5), p(one, 1))
	fmt.Printf("two subnets, 3 eligible on the IP's one   p50 %5.2f s  worst %5.2f s  (%.2fx the baseline p50; target <= 3 s: %.2fx)\n",
		p(two, 0.5), p(two, 1), p(two, 0.5)/p(one, 0.5), p(two, 0.5)/3)
}

// lbFailoverLayout starts a server on subnet a, 3 workers on subnet sub
// holding a pool carved from it, one worker on each of others, and
// returns the sorted failover times of lbKills kills.
func lbFailoverLayout(t *testing.T, id string, n int, sub string, others []string) []time.Duration {
	nw := testutil.NewNetwork(t, id, n)
	pool := fmt.Sprintf("10.%d.%d.64/29", n, map[string]int{"a": 1, "b": 2}[sub])
	if out, err := nw.Router.Exec("ip", "route", "add", pool, "dev", nw.RouterDev(sub)); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	img := testutil.BuildImage(t, "./tests/images/httpd", "iks.local/httpd:1")
	srv := testutil.NewNodeOn(t, id+"-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start("--portable-private-subnet", pool, "--node-label", "node.kubernetes.io/exclude-from-external-load-balancers=true")
	srv.WaitReady(3 * time.Minute)
	tok, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	join := func(name, subnet string, h int) *testutil.Node {
		w := testutil.NewNodeOn(t, name, nw, subnet, h).AsAgent("https://"+srv.IP+":6443", strings.TrimSpace(string(tok)))
		w.Start()
		return w
	}
	var eligible []*testutil.Node
	for i := 1; i <= 3; i++ {
		eligible = append(eligible, join(fmt.Sprintf("%s-e%d", id, i), sub, 10+i))
	}
	var bystanders []*testutil.Node
	for i, o := range others {
		bystanders = append(bystanders, join(fmt.Sprintf("%s-o%d", id, i), o, 20+i))
	}
	for _, w := range append(slices.Clone(eligible), bystanders...) {
		w.WaitReady(3 * time.Minute)
	}
	cli := testutil.NewNetns(t, "iks-"+id+"-cli")
	nw.Attach(cli, sub, nw.IP(sub, 50), "v-"+id+"-cli")
	cs := srv.Client()
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: srv.Name, Containers: []corev1.Container{{Name: "httpd", Image: "iks.local/httpd:1",
			ImagePullPolicy: corev1.PullNever, ReadinessProbe: &corev1.Probe{PeriodSeconds: 1,
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}}}}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ip := fmt.Sprintf("10.%d.%d.68", n, map[string]int{"a": 1, "b": 2}[sub])
	url := "http://" + ip + "/"
	waitUntil(t, 2*time.Minute, "first answer of "+url, func() bool { return extOK(cli, url) })

	holder := func() string {
		l, err := cs.CoordinationV1().Leases("iks-lb").Get(ctx, "ip-"+strings.ReplaceAll(ip, ".", "-"), metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	var took []time.Duration
	for k := 0; k < lbKills; k++ {
		var victim *testutil.Node
		waitUntil(t, time.Minute, "a holder among the eligible nodes", func() bool {
			h := holder()
			for _, w := range eligible {
				if w.Name == h {
					victim = w
				}
			}
			return victim != nil
		})
		t0 := time.Now()
		victim.Kill()
		if err := nw.Cut(victim.Peer()); err != nil {
			t.Fatal(err)
		}
		var since time.Time // start of the run of successes that lasted
		waitUntil(t, 2*time.Minute, "sustained answers after failover", func() bool {
			since = time.Now()
			return sustained(cli, url, 20)
		})
		took = append(took, since.Sub(t0))
		if h := holder(); slices.ContainsFunc(bystanders, func(b *testutil.Node) bool { return b.Name == h }) {
			t.Fatalf("%s taken by %s, a node on another subnet", ip, h)
		}
		if err := nw.Heal(victim.Peer()); err != nil {
			t.Fatal(err)
		}
		victim.Start()
		victim.WaitReady(3 * time.Minute)
	}
	slices.Sort(took)
	return took
}

// sustained reports whether count new connections in a row, 50 ms apart,
// all succeed.
func sustained(cli *testutil.Netns, url string, count int) bool {
	for i := 0; i < count; i++ {
		if !extOK(cli, url) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
