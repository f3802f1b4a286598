package netpol

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// testPod is a pod network namespace wired as the CNI plugin does: veth
// with the host end cali<name>, a /32, a host route, the gateway
// 169.254.1.1 as a permanent neighbour.
type testPod struct {
	ns  *testutil.Netns
	ip  string
	udp chan string // datagrams received by serveUDP
}

func wirePod(t *testing.T, host *testutil.Netns, id, name, ip string) *testPod {
	t.Helper()
	ns := testutil.NewNetns(t, fmt.Sprintf("np%s-%s", id, name))
	hostIf := "cali" + name
	testutil.MustRun(t, "ip", "-n", host.Name, "link", "add", hostIf, "address", "ee:ee:ee:ee:ee:ee", "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	testutil.MustRun(t, "ip", "-n", host.Name, "link", "set", hostIf, "up")
	testutil.MustRun(t, "ip", "-n", host.Name, "route", "add", ip+"/32", "dev", hostIf)
	testutil.MustRun(t, "ip", "-n", ns.Name, "addr", "add", ip+"/32", "dev", "eth0")
	testutil.MustRun(t, "ip", "-n", ns.Name, "link", "set", "eth0", "up")
	testutil.MustRun(t, "ip", "-n", ns.Name, "route", "add", "169.254.1.1", "dev", "eth0")
	testutil.MustRun(t, "ip", "-n", ns.Name, "route", "add", "default", "via", "169.254.1.1")
	testutil.MustRun(t, "ip", "-n", ns.Name, "neigh", "add", "169.254.1.1", "lladdr", "ee:ee:ee:ee:ee:ee", "dev", "eth0", "nud", "permanent")
	testutil.MustRun(t, "ip", "netns", "exec", host.Name, "sysctl", "-qw", "net.ipv4.conf."+hostIf+".proxy_arp=1")
	return &testPod{ns: ns, ip: ip}
}

// serve answers every connection on port with one line: the port.
func serve(t *testing.T, ns *testutil.Netns, port int) {
	t.Helper()
	l, err := ns.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := fmt.Fprintf(c, "%d\n", port); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// serveUDP passes the datagrams p receives on port to p.udp.
func serveUDP(t *testing.T, p *testPod, port int) {
	t.Helper()
	pc, err := p.ns.ListenPacket("udp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p.udp = make(chan string, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.udp <- string(buf[:n])
		}
	}()
}

// reach reports whether from opens a connection to addr and gets an
// answer within a second (a dropped SYN times out).
func reach(from *testutil.Netns, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return ping(c)
}

func ping(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintln(c, "hi"); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

// inHost runs fn on a thread in ns (nft, started from it, inherits it).
func inHost(ns *testutil.Netns, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open(ns.Path())
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func TestDataplane(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	id := fmt.Sprint(os.Getpid() % 100000)
	host := testutil.NewNetns(t, "np"+id+"-host")
	testutil.MustRun(t, "ip", "-n", host.Name, "addr", "add", "10.99.0.1/32", "dev", "lo") // the node's address
	testutil.MustRun(t, "ip", "netns", "exec", host.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	web := wirePod(t, host, id, "web", "172.30.0.2")
	client := wirePod(t, host, id, "client", "172.30.0.3")
	other := wirePod(t, host, id, "other", "172.30.0.4")
	stray := wirePod(t, host, id, "stray", "172.30.0.9") // not in the API yet
	serve(t, web.ns, 8080)
	serve(t, web.ns, 9090)
	serve(t, other.ns, 8080)
	serve(t, stray.ns, 8080)
	serveUDP(t, web, 8081)
	webUDP := web.ip + ":8081"

	// The engine's Init: nftables checked, the table closed until the
	// first sync.
	e := New(Config{NodeName: node}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := inHost(host, func() error { return e.Init(context.Background()) }); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if e.writer == nil {
		t.Skip("nftables unusable here")
	}
	w := e.writer
	if err := reach(client.ns, web.ip+":8080"); err == nil {
		t.Error("client -> web open before the first sync, want it held")
	}
	if err := reach(host, web.ip+":8080"); err != nil {
		t.Errorf("node -> web before the first sync: %v, want open", err)
	}
	labels := map[string]map[string]string{"web": {"app": "web"}, "client": {"role": "client"}, "other": {"role": "other"}}
	apply := func(nps ...*networkingv1.NetworkPolicy) {
		t.Helper()
		ps := []*corev1.Pod{
			pod("app", "web", node, web.ip, labels["web"], corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
			pod("app", "client", node, client.ip, labels["client"]),
			pod("app", "other", node, other.ip, labels["other"]),
		}
		if err := inHost(host, func() error {
			_, err := w.Apply(context.Background(), compileObjs(t, ps, namespaces, nps...))
			return err
		}); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	want := func(from *testutil.Netns, name, addr string, ok bool) {
		t.Helper()
		err := reach(from, addr)
		if ok && err != nil {
			t.Errorf("%s -> %s blocked (%v), want open", name, addr, err)
		}
		if !ok && err == nil {
			t.Errorf("%s -> %s open, want blocked", name, addr)
		}
	}
	webHTTP, webOther := web.ip+":8080", web.ip+":9090"

	apply()
	want(client.ns, "client", webHTTP, true)
	want(stray.ns, "stray pod (no policy anywhere)", webHTTP, true)
	open, err := client.ns.DialContext(context.Background(), "tcp", webHTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	denyAll := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web")}}
	apply(denyAll)
	want(client.ns, "client", webHTTP, false)
	want(host, "node", webHTTP, true)
	want(stray.ns, "unknown pod while a policy exists", other.ip+":8080", false)
	want(host, "node to the unknown pod", stray.ip+":8080", true)
	if err := ping(open); err != nil {
		t.Errorf("connection established before the deny-all broke: %v", err)
	}

	allow := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "allow"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "client")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: portName("http")}, {Protocol: proto(corev1.ProtocolUDP), Port: portNum(8081)}}}}}}
	apply(denyAll, allow)
	want(client.ns, "client", webHTTP, true)
	want(client.ns, "client", webOther, false)
	want(other.ns, "other", webHTTP, false)
	// other wears client's address (allowed to web's UDP port) for a
	// one-way datagram: the reverse path check drops it.
	if err := sendUDP(client.ns, client.ip, webUDP, web); err != nil {
		t.Errorf("client -> web UDP: %v", err)
	}
	testutil.MustRun(t, "ip", "-n", other.ns.Name, "addr", "add", client.ip+"/32", "dev", "eth0")
	if err := sendUDP(other.ns, client.ip, webUDP, web); err == nil {
		t.Errorf("other spoofing %s reached web", client.ip)
	}
	testutil.MustRun(t, "ip", "-n", other.ns.Name, "addr", "del", client.ip+"/32", "dev", "eth0")

	labels["other"] = map[string]string{"role": "client"}
	apply(denyAll, allow)
	want(other.ns, "other relabelled client", webHTTP, true)

	egressDeny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "client-egress"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("role", "client"),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "172.30.0.0/24", Except: []string{web.ip + "/32"}}}}}}}}
	apply(denyAll, allow, egressDeny)
	want(client.ns, "client with egress except web", webHTTP, false)
	want(client.ns, "client to other (ipBlock)", other.ip+":8080", true)
	want(host, "node under egress/ingress deny", webHTTP, true)

	apply()
	want(client.ns, "client after all policies are gone", webOther, true)
}

// sendUDP sends one datagram from ns with source address src to addr and
// reports whether web's UDP listener got it within a second.
func sendUDP(ns *testutil.Netns, src, addr string, web *testPod) error {
	msg := fmt.Sprintf("from %s %d", src, time.Now().UnixNano())
	if err := inHost(ns, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(msg))
		return err
	}); err != nil {
		return err
	}
	deadline := time.After(time.Second)
	for {
		select {
		case got := <-web.udp:
			if got == msg {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("datagram %q not received", msg)
		}
	}
}
