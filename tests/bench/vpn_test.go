package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

// Remote site of TestVPNBench: 192.168.86.0/24 behind a stock charon.
const (
	vbLAN  = "192.168.86.0/24"
	vbHost = "192.168.86.10"
	vbGW   = "192.168.86.1"
	// plainNet is the "local subnet" of the baseline's plain strongSwan peer.
	plainNet  = "10.86.210.0/24"
	plainAddr = "10.86.210.1"
)

func vbRemoteConf(gwIP string) string {
	return fmt.Sprintf(`connections {
  site {
    version = 2
    local_addrs = %[1]s
    dpd_delay = 5s
    local { auth = psk
      id = on-prem }
    remote { auth = psk
      id = ibm-cloud }
    children { site { local_ts = %[2]s
        remote_ts = 172.30.0.0/16,172.21.0.0/16 } }
  }
  plain {
    version = 2
    local_addrs = %[1]s
    local { auth = psk
      id = on-prem-p }
    remote { auth = psk
      id = plain }
    children { plain { local_ts = %[2]s
        remote_ts = %[3]s } }
  }
}
secrets {
  ike-site { id-a = on-prem
    id-b = ibm-cloud
    secret = "bench-secret" }
  ike-plain { id-a = on-prem-p
    id-b = plain
    secret = "bench-secret" }
}
`, gwIP, vbLAN, plainNet)
}

// TestVPNBench: TCP throughput pod → remote host through an iks
// VPNConnection against a plain strongSwan-to-strongSwan tunnel (same
// remote charon, same kernel-libipsec plugin, same run); resource create
// → first request through; remote charon killed and restarted → traffic
// again; the gateway's node (a worker that joins for this) cut off and
// killed → traffic again through the server's node; packets in clear
// text toward the remote LAN during both outages (0 expected, with a
// positive control). The node, the remote site and the baseline each get one CPU
// cgroup of equal weight (testutil.CPUGroup), as three equal machines.
func TestVPNBench(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "vpnb", 86)
	img := testutil.BuildImage(t, "./tests/images/httpd", "iks.local/httpd:1")
	bin := buildHTTPD(t)
	srv := testutil.NewNodeOn(t, "vpnb-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start()

	gw, host := testutil.NewNetns(t, "iks-vpnb-rgw"), testutil.NewNetns(t, "iks-vpnb-rh")
	gwIP := nw.IP("ext", 20)
	nw.Attach(gw, "ext", gwIP, "v-vpnb-rgw")
	testutil.MustRun(t, "ip", "link", "add", "lan0", "netns", gw.Name, "type", "veth", "peer", "name", "eth0", "netns", host.Name)
	testutil.MustRun(t, "ip", "-n", gw.Name, "addr", "add", vbGW+"/24", "dev", "lan0")
	testutil.MustRun(t, "ip", "-n", gw.Name, "link", "set", "lan0", "up")
	testutil.MustRun(t, "ip", "-n", host.Name, "addr", "add", vbHost+"/24", "dev", "eth0")
	testutil.MustRun(t, "ip", "-n", host.Name, "link", "set", "eth0", "up")
	testutil.MustRun(t, "ip", "-n", host.Name, "route", "add", "default", "via", vbGW)
	if out, err := gw.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Three "machines" share this one: the iks node (its cgroup root holds
	// the gateway and the sending pod), the remote site (its charon and
	// host) and the baseline's plain strongSwan (its charon and sender),
	// each one CPU cgroup of the same weight, as machines of one size; in
	// the baseline's, charon and sender get a subgroup each, as the
	// gateway and the sending pod (same CPU request) have on the node.
	remoteMachine := testutil.NewCPUGroup(t, "iks-test-vpnb-remote")
	plainMachine := testutil.NewCPUGroup(t, "iks-test-vpnb-plain")
	plainCharon, plainSender := plainMachine.Sub(t, "charon"), plainMachine.Sub(t, "sender")
	remote := testutil.StartCharon(t, gw, vbRemoteConf(gwIP))
	remoteMachine.Add(t, remote.Pid())
	remoteMachine.Add(t, testutil.SpawnIn(t, host, filepath.Join(remote.Dir, "httpd.log"), "PORT=8080", bin).Process.Pid)
	remoteMachine.Add(t, testutil.SpawnIn(t, host, filepath.Join(remote.Dir, "sink.log"), "", bin, "tcpsink", "-l", ":"+sinkPort).Process.Pid)

	// Baseline peer: a plain strongSwan in its own namespace on subnet b.
	plainNS := testutil.NewNetns(t, "iks-vpnb-plain")
	nw.Attach(plainNS, "b", nw.IP("b", 60), "v-vpnb-plain")
	testutil.MustRun(t, "ip", "-n", plainNS.Name, "addr", "add", plainAddr+"/32", "dev", "lo")
	testutil.MustRun(t, "ip", "-n", plainNS.Name, "link", "set", "lo", "up")
	plain := testutil.StartCharon(t, plainNS, fmt.Sprintf(`connections {
  plain {
    version = 2
    remote_addrs = %s
    local { auth = psk
      id = plain }
    remote { auth = psk
      id = on-prem-p }
    children { plain { local_ts = %s
        remote_ts = %s
        start_action = start } }
  }
}
secrets { ike-plain { id-a = plain
    id-b = on-prem-p
    secret = "bench-secret" } }
`, gwIP, plainNet, vbLAN))
	plainCharon.Add(t, plain.Pid())

	srv.WaitReady(3 * time.Minute)
	cs := srv.Client()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bench-psk", Namespace: "kube-system"}, StringData: map[string]string{"psk": "bench-secret"}}
	if _, err := cs.CoreV1().Secrets("kube-system").Create(t.Context(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vpnb"}, Spec: corev1.PodSpec{NodeName: srv.Name,
		// The gateway's CPU request (not BestEffort): the sender and
		// charon share their node as the baseline's share its machine.
		Containers: []corev1.Container{{Name: "httpd", Image: "iks.local/httpd:1", ImagePullPolicy: corev1.PullNever,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}}}
	if _, err := cs.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Minute, "pod vpnb running", func() bool {
		p, err := cs.CoreV1().Pods("default").Get(t.Context(), "vpnb", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	// Warm the CRD (installed in the background) so the create is timed alone.
	waitUntil(t, time.Minute, "VPNConnection CRD served", func() bool {
		_, err := srv.Kubectl("get", "vpnconnections")
		return err == nil
	})
	through := func() bool {
		_, err := srv.Kubectl("exec", "vpnb", "--", "/httpd", "get", "http://"+vbHost+":8080/")
		return err == nil
	}
	// The gateway runs where label vpn-gateway=yes is: the server's node
	// until the gateway-death round moves it to a worker.
	label := func(n *testutil.Node, l string) {
		t.Helper()
		if out, err := srv.Kubectl("label", "node", n.Name, l); err != nil {
			t.Fatalf("label %s %s: %v: %s", n.Name, l, err, out)
		}
	}
	label(srv, "vpn-gateway=yes")
	f := filepath.Join(t.TempDir(), "vpn.json")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"bench"},
"spec":{"ipsec":{"auto":"start"},"remote":{"gateway":%q,"subnet":%q},"preshared":{"secretName":"bench-psk"},
"nodeSelector":{"vpn-gateway":"yes"}}}`, gwIP, vbLAN)), 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if out, err := srv.Kubectl("apply", "-f", f); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitUntil(t, time.Minute, "first request through the tunnel", through)
	create := time.Since(t0)

	waitUntil(t, 30*time.Second, "plain strongSwan tunnel up", func() bool {
		out, _ := plain.Swanctl("--list-sas")
		return strings.Contains(out, "INSTALLED")
	})
	// Seven alternating rounds of 4 s each (one round moves ±20 % here);
	// the medians are compared.
	const rounds = 7
	var iksR, baseR []float64
	for range rounds {
		iksR = append(iksR, sendVia(t, func() (string, error) {
			return srv.Kubectl("exec", "vpnb", "--", "/httpd", "tcpsend", "-d", "4s", vbHost+":"+sinkPort)
		}))
		baseR = append(baseR, sendVia(t, func() (string, error) {
			return plainNS.Exec(plainSender.Wrap(bin, "tcpsend", "-d", "4s", vbHost+":"+sinkPort)...)
		}))
	}
	iks, base := medianOf(iksR), medianOf(baseR)

	// Clear text toward the remote LAN while the tunnel is down, counted
	// on the remote gateway's external interface (the harness router
	// routes the LAN there from now on); the control shows that a
	// datagram sent in clear from a node subnet is counted.
	clear := testutil.NewClearText(t, nw, gw, gwIP, "eth0", vbLAN)
	control := clear.Control("b", 200, "v-vpnb-ct", vbHost)
	outbound := testutil.SentToward(t, srv.Net, vbLAN)
	outbound.Reset()

	t1 := time.Now()
	remote.Kill()
	remote.Start()
	remoteMachine.Add(t, remote.Pid())
	remote.Load(vbRemoteConf(gwIP))
	requests := 0
	waitUntil(t, 3*time.Minute, "traffic after the remote charon restarted", func() bool { requests++; return through() })
	recovery := time.Since(t1)
	restartLeak, restartPkts := clear.Reset(), outbound.Reset()
	restartRouter, restartRouterSeen := clear.Router.Reset(), clear.Router.Seen()
	clear.Router.Flush()
	if restartPkts == 0 {
		t.Errorf("no packet toward %s during the charon restart: the clear-text count proves nothing", vbLAN)
	}
	if restartLeak != 0 {
		t.Errorf("%d packets reached the remote gateway in clear text toward %s while its charon restarted (source . protocol: %s)", restartLeak, vbLAN, clear.Seen())
	}

	// Gateway node death: a worker joins, the gateway moves there (only
	// it labelled, the pod deleted), the server's node is labelled
	// again; then the worker is cut off and killed, and the gateway must
	// come back on the server's node.
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	w1 := testutil.NewNodeOn(t, "vpnb-w1", nw, "a", 2).AsAgent("https://"+srv.IP+":6443", strings.TrimSpace(string(token)))
	w1.Start()
	w1.WaitReady(3 * time.Minute)
	gatewayNode := func() string {
		out, _ := srv.Kubectl("get", "vpnconnection", "bench", "-o", "jsonpath={.status.gateway.node}")
		return strings.TrimSpace(out)
	}
	label(w1, "vpn-gateway=yes")
	label(srv, "vpn-gateway-")
	if out, err := srv.Kubectl("delete", "pod", "-n", vpnconn.Namespace, "-l", "app=iks-vpn-gateway", "--wait=false"); err != nil {
		t.Fatalf("delete the gateway pod: %v: %s", err, out)
	}
	waitUntil(t, 2*time.Minute, "gateway on "+w1.Name+" and traffic through it", func() bool { return gatewayNode() == w1.Name && through() })
	label(srv, "vpn-gateway=yes")
	clear.Reset()
	clear.Flush()
	outbound.Reset()
	t2 := time.Now()
	if err := nw.Cut(w1.Peer()); err != nil {
		t.Fatal(err)
	}
	w1.Kill()
	deathRequests := 0
	waitUntil(t, 2*time.Minute, "traffic after the gateway node died", func() bool { deathRequests++; return through() })
	death := time.Since(t2)
	deathLeak, deathPkts := clear.Packets(), outbound.Packets()
	deathRouter, deathRouterSeen := clear.Router.Packets(), clear.Router.Seen()
	if g := gatewayNode(); g != srv.Name {
		t.Errorf("after the gateway node died the gateway is on %q, want %s", g, srv.Name)
	}
	if deathPkts == 0 {
		t.Errorf("no packet toward %s during the gateway node's death: the clear-text count proves nothing", vbLAN)
	}
	if deathLeak != 0 {
		t.Errorf("%d packets reached the remote gateway in clear text toward %s while the gateway node was dead (source . protocol: %s)", deathLeak, vbLAN, clear.Seen())
	}

	t.Logf("VPN: TCP pod → remote host through iks (kernel-libipsec) %.3f Gbit/s vs plain strongSwan-to-strongSwan %.3f Gbit/s = %.2fx (target ≥ 0.9x; medians of %d rounds: iks %.3f, plain %.3f); load %s",
		iks, base, iks/base, rounds, iksR, baseR, loadavg())
	t.Logf("VPN: VPNConnection create → first request through %s (target ≤ 5 s; includes the gateway pod's start)", create.Round(10*time.Millisecond))
	t.Logf("VPN: remote charon killed and restarted → traffic again %s (target ≤ 15 s; charon's defaults ~166 s)", recovery.Round(10*time.Millisecond))
	t.Logf("VPN: gateway node cut off and killed → traffic again through the other node %s (target ≤ 15 s; Lease 6 s + 2 s)", death.Round(10*time.Millisecond))
	t.Logf("VPN: clear text toward the remote LAN while the tunnel was down: %d of the %d packets of %d requests during the charon restart, %d of %d packets of %d requests during the gateway node's death; control: %d datagram sent in clear counted; not counted, the harness router's own packets toward the LAN: %d (%s), %d (%s)",
		restartLeak, restartPkts, requests, deathLeak, deathPkts, deathRequests, control, restartRouter, restartRouterSeen, deathRouter, deathRouterSeen)
}

// sendVia runs one 4 s tcpsend and returns its Gbit/s.
func sendVia(t *testing.T, run func() (string, error)) float64 {
	t.Helper()
	out, err := run()
	if err != nil {
		t.Fatalf("tcpsend: %v: %s", err, out)
	}
	g, err := parseGbps(out)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
