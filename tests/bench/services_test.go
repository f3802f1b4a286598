package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestServiceSync measures how long kube-proxy takes to program 1,000
// Services with 10,000 endpoints (10 per Service), created through the
// API without pods on a single-node cluster, next to the same measurement
// for 10 Services with 100 endpoints in the same run. Each batch is timed
// from its first create to the moment the node's rules hold the batch's
// last Service; kube-proxy's own mean sync duration is printed for both.
func TestServiceSync(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	n := testutil.NewNode(t, "px-b", "10.93.9.1")
	n.Start()
	n.WaitReady(3 * time.Minute)
	mode := "iptables"
	if regexp.MustCompile(`kube-proxy mode.* mode=nftables`).MatchString(n.Log()) {
		mode = "nftables"
	}
	cs := fastClient(t, n)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "iks-px-bench"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	small := syncBatch(t, n, cs, mode, "small", 10, 10, 2*time.Minute)
	big := syncBatch(t, n, cs, mode, "big", 1000, 10, 6*time.Minute)
	fmt.Printf("\n== kube-proxy rule sync (%s mode) ==\n"+
		"%-34s %8s %10s %12s %10s\n"+
		"%-34s %7.2fs %9.2fs %11.2fs %8.0fms\n"+
		"%-34s %7.2fs %9.2fs %11.2fs %8.0fms\n"+
		"ratio big/small: create to rules %.1fx, after the last create %.1fx, mean sync %.1fx\n",
		mode, "batch", "create", "to rules", "after create", "mean sync",
		"10 Services / 100 endpoints", small.create.Seconds(), small.total.Seconds(), (small.total - small.create).Seconds(), ms(small.meanSync),
		"1,000 Services / 10,000 endpoints", big.create.Seconds(), big.total.Seconds(), (big.total - big.create).Seconds(), ms(big.meanSync),
		big.total.Seconds()/small.total.Seconds(), (big.total-big.create).Seconds()/(small.total-small.create).Seconds(),
		float64(big.meanSync)/float64(small.meanSync))
}

type syncResult struct {
	create, total, meanSync time.Duration
}

// syncBatch creates count selectorless Services with perSvc endpoints
// each (one EndpointSlice per Service), then waits until the node's
// rules hold the ClusterIP of the last one created.
func syncBatch(t *testing.T, n *testutil.Node, cs kubernetes.Interface, mode, prefix string, count, perSvc int, timeout time.Duration) syncResult {
	t.Helper()
	ctx := context.Background()
	sum0, cnt0 := syncMetric(t, n)
	t0 := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	jobs := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createBackend(ctx, cs, fmt.Sprintf("%s-%d", prefix, i), i, perSvc); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < count-1; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d creates failed, first: %v", len(errs), errs[0])
	}
	// The last Service is created after all others.
	last := fmt.Sprintf("%s-%d", prefix, count-1)
	if err := createBackend(ctx, cs, last, count-1, perSvc); err != nil {
		t.Fatal(err)
	}
	create := time.Since(t0)
	svc, err := cs.CoreV1().Services("iks-px-bench").Get(ctx, last, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for !rulesHold(n, mode, svc.Spec.ClusterIP) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: rules for %s (%s) not in place %s after the batch was created", prefix, last, svc.Spec.ClusterIP, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	total := time.Since(t0)
	sum1, cnt1 := syncMetric(t, n)
	var mean time.Duration
	if cnt1 > cnt0 {
		mean = time.Duration((sum1 - sum0) / (cnt1 - cnt0) * float64(time.Second))
	}
	return syncResult{create: create, total: total, meanSync: mean}
}

// createBackend creates a selectorless Service and one EndpointSlice with
// perSvc ready endpoints in the pod range (no traffic is ever sent).
func createBackend(ctx context.Context, cs kubernetes.Interface, name string, idx, perSvc int) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}}}
	if _, err := cs.CoreV1().Services("iks-px-bench").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s: %w", name, err)
	}
	portName, port, proto, ready := "http", int32(8080), corev1.ProtocolTCP, true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "iks-bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for e := 0; e < perSvc; e++ {
		k := idx*perSvc + e // distinct addresses in 172.30.128.0/17
		addr := fmt.Sprintf("172.30.%d.%d", 128+k/250, 1+k%250)
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("iks-px-bench").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", name, err)
	}
	return nil
}

// rulesHold reports whether kube-proxy's service dispatch (the nftables
// service-ips map, or the iptables KUBE-SERVICES chain) has clusterIP.
func rulesHold(n *testutil.Node, mode, clusterIP string) bool {
	var out string
	var err error
	if mode == "nftables" {
		out, err = n.Net.Exec("nft", "list", "map", "ip", "kube-proxy", "service-ips")
	} else {
		out, err = n.Net.Exec("iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES")
	}
	return err == nil && (strings.Contains(out, clusterIP+" ") || strings.Contains(out, clusterIP+"/32 "))
}

// syncMetric returns the sum and count of kube-proxy's IPv4
// sync_proxy_rules_duration_seconds, read from its loopback metrics port.
func syncMetric(t *testing.T, n *testutil.Node) (sum, count float64) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.Net.DialContext(ctx, network, addr)
	}}}
	resp, err := c.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		t.Fatalf("kube-proxy metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []struct {
			prefix string
			v      *float64
		}{{`kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv4"} `, &sum}, {`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} `, &count}} {
			if strings.HasPrefix(line, m.prefix) {
				*m.v, _ = strconv.ParseFloat(strings.TrimPrefix(line, m.prefix), 64)
			}
		}
	}
	return sum, count
}

// fastClient is an admin client without client-go's default 5 QPS limit,
// so creating the batch measures the apiserver, not the client.
func fastClient(t *testing.T, n *testutil.Node) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", n.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dial = n.Net.DialContext
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
