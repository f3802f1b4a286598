package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

// TestVPN: a VPNConnection (ipsec.auto start) to a stock strongSwan on a
// remote site: established over kernel-libipsec, pods on each of three
// nodes (two L2 subnets) reach the remote host and it reaches them with
// their own addresses, `iks vpn status`/`check`; a wrong pre-shared key
// gives a clear condition and only blackhole routes, leaving the other
// connection up; deleting the resource removes routes and SAs; the NAT
// options; certificate authentication; a load balancer IP the remote
// connects to and the cluster connects from.
func TestVPN(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "vpn", 87)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	httpdBin := testutil.BuildBinary(t, "./tests/images/httpd")
	srv := testutil.NewNodeOn(t, "vpn-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start()
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	w1 := testutil.NewNodeOn(t, "vpn-w1", nw, "a", 2).AsAgent("https://"+srv.IP+":6443", token)
	w2 := testutil.NewNodeOn(t, "vpn-w2", nw, "b", 1).AsAgent("https://"+srv.IP+":6443", token)
	nodes := []*testutil.Node{srv, w1, w2}
	for _, w := range nodes[1:] {
		w.StageImage(img, "httpd.tar")
		w.Start()
	}
	site := newRemoteSite(t, nw, httpdBin)
	for _, w := range nodes[1:] {
		w.WaitReady(3 * time.Minute)
	}
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)
	rc, err := kubeutil.RESTConfig(srv.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	rc.Dial = srv.Net.DialContext
	dyn := dynamic.NewForConfigOrDie(rc)
	dump := func() {
		{
			out, _ := srv.Command("vpn", "status").CombinedOutput()
			t.Logf("===== iks vpn status\n%s", out)
			out2, _ := srv.Kubectl("get", "vpnconnections,pods", "-A", "-o", "wide")
			t.Logf("===== resources\n%s", out2)
			sas, _ := site.swanctl("--list-sas")
			t.Logf("===== remote SAs\n%s", sas)
			for _, n := range nodes {
				r, _ := n.Net.Exec("ip", "route", "show", "table", "all", "proto", "82")
				t.Logf("===== %s VPN routes\n%s", n.Name, r)
			}
			pods, _ := srv.Kubectl("get", "pods", "-n", vpnconn.Namespace, "-l", "app=iks-vpn-gateway", "-o", "name")
			for _, d := range strings.Fields(pods) {
				l, _ := srv.Kubectl("logs", "-n", vpnconn.Namespace, d, "--tail", "400")
				var keep []string
				for _, line := range strings.Split(l, "\n") {
					if !strings.Contains(line, "[NET]") && !strings.Contains(line, "[ENC]") {
						keep = append(keep, line)
					}
				}
				t.Logf("===== gateway %s\n%s", d, strings.Join(keep, "\n"))
				if prev, err := srv.Kubectl("logs", "-n", vpnconn.Namespace, d, "--previous", "--tail", "200"); err == nil {
					t.Logf("===== gateway %s, previous container\n%s", d, prev)
				}
			}
			b, _ := os.ReadFile(filepath.Join(site.dir, "charon.log"))
			t.Logf("===== remote charon\n%s", b)
			for _, n := range nodes {
				var lines []string
				for _, l := range strings.Split(n.Log(), "\n") {
					if strings.Contains(l, "vpn") {
						lines = append(lines, l)
					}
				}
				t.Logf("===== %s log (vpn)\n%s", n.Name, strings.Join(lines, "\n"))
				r, _ := n.Net.Exec("sh", "-c", "ip rule; ip route show table all | grep -v -e local -e fe80 -e ff00; nft list table ip iks-vpn; ip -s link show ipsec0")
				t.Logf("===== %s network\n%s", n.Name, r)
			}
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump()
		}
	})
	for _, n := range nodes {
		createPod(t, cs, "vpn-"+n.Name, n.Name)
	}
	podIPs := map[string]string{}
	for _, n := range nodes {
		waitPodRunning(t, cs, "vpn-"+n.Name, 2*time.Minute)
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), "vpn-"+n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		podIPs[n.Name] = p.Status.PodIP
	}
	mustSecret(t, cs, "site-psk", "site-secret")
	mustSecret(t, cs, "bad-psk", "a-wrong-secret")
	mustSecret(t, cs, "single-psk", "single-secret")
	// The gateway of "site" may run on the workers only (nodeSelector), so
	// that killing its node never kills the control plane.
	for _, w := range nodes[1:] {
		if out, err := srv.Kubectl("label", "node", w.Name, "vpn-gateway=yes"); err != nil {
			t.Fatalf("label %s: %v: %s", w.Name, err, out)
		}
	}

	t.Run("ipsec.auto start establishes the tunnel over kernel-libipsec", func(t *testing.T) {
		applyVPN(t, srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"site"},
"spec":{"ipsec":{"auto":"start"},"remote":{"gateway":%q,"subnet":%q,"privateIPtoPing":%q},"preshared":{"secretName":"site-psk"},
"nodeSelector":{"vpn-gateway":"yes"}}}`,
			site.GWIP, site.LAN, site.HostIP))
		c := waitVPN(t, dyn, "site", 90*time.Second, func(c *vpnconn.Conn) error {
			if !c.Up() {
				return fmt.Errorf("not established: %+v", c.Status.Conditions)
			}
			return nil
		})
		if gw := c.Status.Gateway.Node; gw != w1.Name && gw != w2.Name {
			t.Errorf("gateway on %s, want a node of the nodeSelector (%s or %s)", gw, w1.Name, w2.Name)
		}
		if c.Status.Gateway.Dataplane != vpnconn.DataplaneLibipsec {
			t.Errorf("dataplane %q, want %s on this kernel without ESP", c.Status.Gateway.Dataplane, vpnconn.DataplaneLibipsec)
		}
		if c.Status.IKE.State != "ESTABLISHED" || c.Status.Child.State != "INSTALLED" || c.Status.IKE.EstablishedAt == nil {
			t.Errorf("status IKE %+v CHILD %+v", c.Status.IKE, c.Status.Child)
		}
		if out, err := site.swanctl("--list-sas", "--ike", "site"); err != nil || !strings.Contains(out, "ESTABLISHED") {
			t.Errorf("remote has no established SA: %v\n%s", err, out)
		}
		// The chart's defaults: closeaction auto and dpdaction restart
		// (charon's "start"), DPD every 5 s, keyingtries %forever,
		// rekeying margintime 9m before ikelifetime 3h / lifetime 1h.
		expectConns(t, "site", "rekey_time=10260 ", "dpd_delay=5 ", "rekey_time=3060 ", "dpd_action=start close_action=start")
	})

	t.Run("pods on every node reach the remote host with their own address", func(t *testing.T) {
		for _, n := range nodes {
			pod := "vpn-" + n.Name
			eventually(t, 30*time.Second, pod+" → remote host", func() error {
				out, err := srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+site.HostIP+":8080/whoami")
				if err == nil && strings.TrimSpace(out) != "client="+podIPs[n.Name] {
					err = fmt.Errorf("remote host saw %q, want client=%s (no NAT)", out, podIPs[n.Name])
				}
				return err
			})
		}
	})

	t.Run("the remote host reaches pods on every node", func(t *testing.T) {
		for _, n := range nodes {
			url := "http://" + podIPs[n.Name] + ":8080/whoami"
			eventually(t, 20*time.Second, "remote host → "+url, func() error {
				out, err := site.hostGet(httpdBin, url)
				if err == nil && strings.TrimSpace(out) != "client="+site.HostIP {
					err = fmt.Errorf("pod saw %q, want client=%s", out, site.HostIP)
				}
				return err
			})
		}
	})

	t.Run("iks vpn status and check", func(t *testing.T) {
		out, err := srv.Command("vpn", "status").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "site") || !strings.Contains(string(out), "INSTALLED") {
			t.Errorf("iks vpn status: %v\n%s", err, out)
		}
		out, err = srv.Command("vpn", "check", "site").CombinedOutput()
		if err != nil || strings.Count(string(out), "PASS") != 4 {
			t.Errorf("iks vpn check site: %v\n%s", err, out)
		}
	})

	t.Run("a wrong pre-shared key: clear condition, blackhole only, the other connection untouched", func(t *testing.T) {
		applyVPN(t, srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"bad"},
"spec":{"ipsec":{"auto":"start"},"local":{"id":"ibm-cloud-b"},"remote":{"id":"on-prem-b","gateway":%q,"subnet":%q},"preshared":{"secretName":"bad-psk"}}}`,
			site.GWIP, vpnBadLAN))
		c := waitVPN(t, dyn, "bad", 90*time.Second, func(c *vpnconn.Conn) error {
			e := c.Status.Condition(vpnconn.ConditionEstablished)
			if e == nil || e.Reason != vpnconn.ReasonAuthFailed {
				return fmt.Errorf("Established condition %+v, want reason %s", e, vpnconn.ReasonAuthFailed)
			}
			return nil
		})
		if e := c.Status.Condition(vpnconn.ConditionEstablished); e.Status != metav1.ConditionFalse || !strings.Contains(e.Message, "pre-shared key") {
			t.Errorf("condition %+v: want False naming the pre-shared key", e)
		}
		for _, n := range nodes {
			eventually(t, 20*time.Second, n.Name+" blackholes "+vpnBadLAN, func() error {
				out, err := n.Net.Exec("ip", "route", "show", vpnBadLAN)
				if err == nil && !strings.HasPrefix(strings.TrimSpace(out), "blackhole") {
					err = fmt.Errorf("route %q, want only a blackhole", out)
				}
				return err
			})
		}
		if c, err := getVPN(dyn, "site"); err != nil || !c.Up() {
			t.Errorf("connection site after adding bad: up=%v err=%v", c != nil && c.Up(), err)
		}
		if out, err := srv.Kubectl("delete", "vpnconnection", "bad", "--wait=true"); err != nil {
			t.Fatalf("delete bad: %v: %s", err, out)
		}
	})

	alive := nodes
	t.Run("gateway node killed: the tunnel comes back on another eligible node", func(t *testing.T) {
		c, err := getVPN(dyn, "site")
		if err != nil {
			t.Fatal(err)
		}
		var victim *testutil.Node
		alive = nil
		for _, n := range nodes {
			if n.Name == c.Status.Gateway.Node {
				victim = n
			} else {
				alive = append(alive, n)
			}
		}
		if victim == nil || victim == srv {
			t.Fatalf("gateway node %q is not a worker", c.Status.Gateway.Node)
		}
		// Clear text toward the remote subnet while the tunnel is down:
		// counted where it would arrive, on the remote gateway's
		// external interface; the control shows a packet sent in clear
		// from a node's subnet is counted.
		clear := testutil.NewClearText(t, nw, site.GW, site.GWIP, "eth0", site.LAN)
		control := clear.Control("a", 200, "v-vpn-ct", site.HostIP)
		var outbound []*testutil.NftCounter
		for _, n := range alive {
			outbound = append(outbound, testutil.SentToward(t, n.Net, site.LAN))
		}
		// Requests to the remote host from the pods of the surviving
		// nodes through the whole window, as applications would keep
		// sending.
		var sent, answered atomic.Int64
		var senders sync.WaitGroup
		stop := make(chan struct{})
		stopSenders := sync.OnceFunc(func() { close(stop); senders.Wait() })
		defer stopSenders()
		for _, n := range alive {
			pod := "vpn-" + n.Name
			senders.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					sent.Add(1)
					if _, err := srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+site.HostIP+":8080/whoami"); err == nil {
						answered.Add(1)
					}
				}
			})
		}
		t0 := time.Now()
		if err := nw.Cut(victim.Peer()); err != nil {
			t.Fatal(err)
		}
		victim.Kill()
		t.Cleanup(func() {
			if t.Failed() {
				dump()
			}
		})
		c = waitVPN(t, dyn, "site", 60*time.Second, func(c *vpnconn.Conn) error {
			if c.Status.Gateway.Node == victim.Name || !c.Up() {
				return fmt.Errorf("gateway %s, established %v", c.Status.Gateway.Node, c.Up())
			}
			return nil
		})
		eventually(t, 30*time.Second, "pod on "+srv.Name+" → remote host after the failover", func() error {
			_, err := srv.Kubectl("exec", "vpn-"+srv.Name, "--", "/httpd", "get", "http://"+site.HostIP+":8080/whoami")
			return err
		})
		took := time.Since(t0)
		stopSenders()
		leaked, pkts := clear.Packets(), 0
		for _, o := range outbound {
			pkts += o.Packets()
		}
		t.Logf("tunnel back and traffic flowing through %s %s after the gateway node %s died", c.Status.Gateway.Node, took.Round(100*time.Millisecond), victim.Name)
		t.Logf("clear text toward %s during the failover: %d of the %d packets of %d requests (%d answered) by the pods of %d surviving nodes; control: %d packet sent in clear counted",
			site.LAN, leaked, pkts, sent.Load(), answered.Load(), len(alive), control)
		if leaked != 0 {
			t.Errorf("%d packets reached the remote gateway in clear text toward %s while the tunnel was down (source . protocol: %s)", leaked, site.LAN, clear.Seen())
		}
		if sent.Load() == 0 || pkts == 0 {
			t.Errorf("%d requests, %d packets sent toward %s during the failover: the clear-text count proves nothing", sent.Load(), pkts, site.LAN)
		}
		if took > 30*time.Second {
			t.Errorf("failover took %s: the gateway Lease (6 s + 2 s) should move it well within 30 s", took.Round(time.Second))
		}
	})

	t.Run("deleting the resource removes routes and SAs", func(t *testing.T) {
		if out, err := srv.Kubectl("delete", "vpnconnection", "site", "--wait=true"); err != nil {
			t.Fatalf("delete: %v: %s", err, out)
		}
		for _, n := range alive {
			eventually(t, 30*time.Second, n.Name+" drops its routes to "+vpnLAN, func() error {
				out, err := n.Net.Exec("ip", "route", "show", "table", "all", vpnLAN)
				if err == nil && strings.TrimSpace(out) != "" {
					err = fmt.Errorf("routes left: %q", out)
				}
				return err
			})
		}
		eventually(t, 30*time.Second, "remote SAs of site gone", func() error {
			out, err := site.swanctl("--list-sas", "--ike", "site")
			if err == nil && strings.Contains(out, "site:") {
				err = fmt.Errorf("remote still has %s", out)
			}
			return err
		})
	})

	t.Run("ipsec.auto add and enableSingleSourceIP: the remote connects, sees one address", func(t *testing.T) {
		const single = "10.250.0.7"
		applyVPN(t, srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"single"},
"spec":{"enableSingleSourceIP":true,"local":{"id":"ibm-cloud-s","subnet":"%s/32"},"remote":{"id":"on-prem-s","subnet":%q},
"preshared":{"secretName":"single-psk"}}}`, single, site.LAN))
		c := waitVPN(t, dyn, "single", 60*time.Second, func(c *vpnconn.Conn) error {
			e := c.Status.Condition(vpnconn.ConditionEstablished)
			if e == nil || e.Reason != vpnconn.ReasonWaitingForPeer || c.Status.Gateway.NodeIP == "" {
				return fmt.Errorf("Established %+v, want reason %s with the gateway's address", e, vpnconn.ReasonWaitingForPeer)
			}
			return nil
		})
		site.addSingle(t, c.Status.Gateway.NodeIP, single)
		waitVPN(t, dyn, "single", 30*time.Second, func(c *vpnconn.Conn) error {
			if !c.Up() {
				return fmt.Errorf("not established: %+v", c.Status.Conditions)
			}
			return nil
		})
		for _, n := range alive {
			pod := "vpn-" + n.Name
			eventually(t, 30*time.Second, pod+" → remote host as "+single, func() error {
				out, err := srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+site.HostIP+":8080/whoami")
				if err == nil && strings.TrimSpace(out) != "client="+single {
					err = fmt.Errorf("remote host saw %q, want client=%s", out, single)
				}
				return err
			})
		}
	})

	t.Run("remoteSubnetNAT: pods reach the remote at the mapped range, the remote appears from it", func(t *testing.T) {
		if out, err := srv.Kubectl("delete", "vpnconnection", "single", "--wait=true"); err != nil {
			t.Fatalf("delete single: %v: %s", err, out)
		}
		const mappedHost = "10.251.87.10"
		applyVPN(t, srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"mapped"},
"spec":{"ipsec":{"auto":"start"},"remote":{"gateway":%q,"subnet":%q},"remoteSubnetNAT":"%s=10.251.87.0/24","preshared":{"secretName":"site-psk"}}}`,
			site.GWIP, site.LAN, site.LAN))
		waitVPN(t, dyn, "mapped", 60*time.Second, func(c *vpnconn.Conn) error {
			if !c.Up() {
				return fmt.Errorf("not established: %+v", c.Status.Conditions)
			}
			return nil
		})
		for _, n := range alive {
			pod := "vpn-" + n.Name
			eventually(t, 30*time.Second, pod+" → remote host at "+mappedHost, func() error {
				out, err := srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+mappedHost+":8080/whoami")
				if err == nil && strings.TrimSpace(out) != "client="+podIPs[n.Name] {
					err = fmt.Errorf("remote host saw %q, want client=%s", out, podIPs[n.Name])
				}
				return err
			})
			url := "http://" + podIPs[n.Name] + ":8080/whoami"
			eventually(t, 20*time.Second, "remote host → "+url, func() error {
				out, err := site.hostGet(httpdBin, url)
				if err == nil && strings.TrimSpace(out) != "client="+mappedHost {
					err = fmt.Errorf("pod saw %q, want client=%s (the mapped address)", out, mappedHost)
				}
				return err
			})
			if out, _ := n.Net.Exec("ip", "route", "show", site.LAN); strings.TrimSpace(out) != "" {
				t.Errorf("%s routes the real remote subnet %s: %q; only the mapped range is routed", n.Name, site.LAN, out)
			}
		}
	})

	t.Run("localSubnetNAT: the remote sees pods in the mapped range and reaches them there", func(t *testing.T) {
		if out, err := srv.Kubectl("delete", "vpnconnection", "mapped", "--wait=true"); err != nil {
			t.Fatalf("delete mapped: %v: %s", err, out)
		}
		applyVPN(t, srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"lnat"},
"spec":{"ipsec":{"auto":"start","closeaction":"none","dpdaction":"hold","margintime":"5m","keyingtries":3},
"local":{"id":"ibm-cloud-l","subnet":"10.252.0.0/16"},"localSubnetNAT":"172.30.0.0/16=10.252.0.0/16",
"remote":{"id":"on-prem-l","gateway":%q,"subnet":%q},"preshared":{"secretName":"site-psk"}}}`, site.GWIP, site.LAN))
		waitVPN(t, dyn, "lnat", 60*time.Second, func(c *vpnconn.Conn) error {
			if !c.Up() {
				return fmt.Errorf("not established: %+v", c.Status.Conditions)
			}
			return nil
		})
		// ipsec.closeaction none, dpdaction hold (charon's trap),
		// margintime 5m: rekeying at 3h-5m and 1h-5m.
		expectConns(t, "lnat", "rekey_time=10500 ", "rekey_time=3300 ", "dpd_action=trap close_action=none")
		for _, n := range alive {
			pod := "vpn-" + n.Name
			mapped := "10.252." + strings.SplitN(podIPs[n.Name], ".", 3)[2]
			eventually(t, 30*time.Second, pod+" → remote host as "+mapped, func() error {
				out, err := srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+site.HostIP+":8080/whoami")
				if err == nil && strings.TrimSpace(out) != "client="+mapped {
					err = fmt.Errorf("remote host saw %q, want client=%s", out, mapped)
				}
				return err
			})
			eventually(t, 20*time.Second, "remote host → "+mapped, func() error {
				out, err := site.hostGet(httpdBin, "http://"+mapped+":8080/whoami")
				if err == nil && strings.TrimSpace(out) != "client="+site.HostIP {
					err = fmt.Errorf("pod saw %q, want client=%s", out, site.HostIP)
				}
				return err
			})
		}
	})

	t.Run("a remote subnet overlapping the pod range without NAT: condition Valid names it, no gateway, no routes", func(t *testing.T) {
		applyVPN(t, srv, `{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"overlap"},
"spec":{"remote":{"subnet":"172.30.8.0/24"},"preshared":{"secretName":"site-psk"}}}`)
		c := waitVPN(t, dyn, "overlap", 30*time.Second, func(c *vpnconn.Conn) error {
			if v := c.Status.Condition(vpnconn.ConditionValid); v == nil || v.Status != metav1.ConditionFalse {
				return fmt.Errorf("Valid %+v, want False", v)
			}
			return nil
		})
		if msg := c.Status.Condition(vpnconn.ConditionValid).Message; !strings.Contains(msg, "172.30.8.0/24 overlaps the cluster range") || !strings.Contains(msg, "remoteSubnetNAT") {
			t.Errorf("Valid message %q: want the subnet, the overlap and the fix", msg)
		}
		if _, err := cs.AppsV1().Deployments(vpnconn.Namespace).Get(context.Background(), "iks-vpn-overlap", metav1.GetOptions{}); err == nil {
			t.Error("a gateway runs for an invalid connection")
		}
		for _, n := range alive {
			if out, _ := n.Net.Exec("ip", "route", "show", "proto", "82", "172.30.8.0/24"); strings.TrimSpace(out) != "" {
				t.Errorf("%s routes the invalid connection's subnet: %q", n.Name, out)
			}
		}
		if c, err := getVPN(dyn, "lnat"); err != nil || !c.Up() {
			t.Errorf("connection lnat after the invalid one: up=%v err=%v", c != nil && c.Up(), err)
		}
		testVPNRefusedOptions(t, srv, cs, dyn)
		if out, err := srv.Kubectl("delete", "vpnconnection", "overlap", "--wait=true"); err != nil {
			t.Errorf("delete overlap: %v: %s", err, out)
		}
	})

	v := &vpnCluster{srv: srv, cs: cs, dyn: dyn, site: site, alive: alive, podIPs: podIPs, httpdBin: httpdBin}
	t.Run("certificate authentication: a missing Secret is named; ipsec.authby pubkey comes up with the peer, rolls on renewal; another CA is refused", func(t *testing.T) {
		v.deleteVPN(t, "lnat")
		testVPNCertificates(t, v)
	})

	t.Run("loadBalancerIP: checked against the pools; the remote connects to it; connectUsingLoadBalancerIP connects from it", func(t *testing.T) {
		v.deleteVPN(t, "certs")
		testVPNLoadBalancerIP(t, v)
	})
}

func mustSecret(t *testing.T, cs kubernetes.Interface, name, psk string) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vpnconn.Namespace}, StringData: map[string]string{"psk": psk}}
	if _, err := cs.CoreV1().Secrets(vpnconn.Namespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// applyVPN applies a VPNConnection given as JSON; the CRD is installed
// in the background by the server, so this retries until it is served.
func applyVPN(t *testing.T, srv *testutil.Node, obj string) {
	t.Helper()
	// Not t.TempDir(): kubectl -f splits the subtest's name at commas.
	dir, err := os.MkdirTemp("", "iks-vpn-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := filepath.Join(dir, "vpn.json")
	if err := os.WriteFile(f, []byte(obj), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "kubectl apply VPNConnection", func() error {
		out, err := srv.Kubectl("apply", "-f", f)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

func getVPN(dyn dynamic.Interface, name string) (*vpnconn.Conn, error) {
	u, err := dyn.Resource(vpnconn.GVR).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return vpnconn.FromUnstructured(u)
}

// waitVPN polls the connection until ok accepts it.
func waitVPN(t *testing.T, dyn dynamic.Interface, name string, timeout time.Duration, ok func(*vpnconn.Conn) error) *vpnconn.Conn {
	t.Helper()
	var c *vpnconn.Conn
	eventually(t, timeout, "VPNConnection "+name, func() (err error) {
		if c, err = getVPN(dyn, name); err != nil {
			return err
		}
		return ok(c)
	})
	return c
}
