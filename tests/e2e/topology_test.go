package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// Portable subnets of TestTopology: each carved from one harness network,
// which the router has on-link, as a VLAN's router would.
const (
	topoPublic   = "10.96.4.64/29" // on the public network "pub"
	topoPrivateA = "10.96.1.64/29" // on private network a (zone z1)
	topoPrivateB = "10.96.2.64/29" // on private network b (zone z2)
	topoNowhere  = "10.96.8.0/29"  // on no node's network
)

// TestTopology: IKS's public/private sides, VLANs and zones. Nodes sit on
// two private networks in two zones, two of them dual-homed with a public
// interface on a third network. LoadBalancer IPs of each portable subnet
// land only on nodes attached to that subnet's network and side, answer
// clients there, move within that network when their holder dies, and
// never go to a node that cannot answer ARP for them.
//
//	srv  a (z1)             control plane, excluded from LB duty
//	w1   a (z1) + pub       dual-homed
//	w2   a (z1) + pub       dual-homed
//	w3   b (z2)             private-only worker
func TestTopology(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "tp", 96)
	for p, sub := range map[string]string{topoPublic: "pub", topoPrivateA: "a", topoPrivateB: "b"} {
		if out, err := nw.Router.Exec("ip", "route", "add", p, "dev", nw.RouterDev(sub)); err != nil {
			t.Fatalf("router route %s: %v: %s", p, err, out)
		}
	}
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	srv := testutil.NewNodeOn(t, "tp-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start("--zone", "z1", "--portable-public-subnet", topoPublic, "--portable-private-subnet", topoPrivateA,
		"--portable-private-subnet", topoPrivateB, "--portable-private-subnet", topoNowhere)
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	url := "https://" + srv.IP + ":6443"
	w1 := testutil.NewNodeOn(t, "tp-w1", nw, "a", 2).AsAgent(url, token)
	w2 := testutil.NewNodeOn(t, "tp-w2", nw, "a", 3).AsAgent(url, token)
	w3 := testutil.NewNodeOn(t, "tp-w3", nw, "b", 4).AsAgent(url, token)
	public := map[*testutil.Node]string{w1: nw.IP("pub", 2), w2: nw.IP("pub", 3)}
	for w, pub := range public {
		// As an IKS worker: the public interface carries the default
		// route, the private one the cluster's networks.
		nw.AttachSecond(w.Net, "pub", pub, "p-"+strings.TrimPrefix(w.Name, "iks-"), "eth1")
		mustExec(t, w.Net, "ip", "route", "replace", "default", "via", nw.Gateway("pub"), "dev", "eth1")
		mustExec(t, w.Net, "ip", "route", "add", "10.96.2.0/24", "via", nw.Gateway("a"), "dev", "eth0")
	}
	for _, w := range []*testutil.Node{w1, w2, w3} {
		w.StageImage(img, "httpd.tar")
	}
	w1.Start("--zone", "z1", "--public-ip", public[w1])
	w2.Start("--zone", "z1", "--public-interface", "eth1")
	w3.Start("--zone", "z2")
	for _, w := range []*testutil.Node{w1, w2, w3} {
		w.WaitReady(3 * time.Minute)
	}
	cs := srv.Client()
	waitNodesReady(t, cs, 4, 2*time.Minute)
	if _, err := srv.Kubectl("label", "node", srv.Name, "node.kubernetes.io/exclude-from-external-load-balancers=true"); err != nil {
		t.Fatal(err)
	}
	all := []*testutil.Node{srv, w1, w2, w3}

	// Clients: the internet (ext) for public IPs, one host on each
	// private network for private IPs.
	ext := testutil.NewNetns(t, "iks-tp-ext")
	nw.Attach(ext, "ext", nw.IP("ext", 10), "v-tp-ext")
	cliA := testutil.NewNetns(t, "iks-tp-cla")
	nw.Attach(cliA, "a", nw.IP("a", 50), "v-tp-cla")
	cliB := testutil.NewNetns(t, "iks-tp-clb")
	nw.Attach(cliB, "b", nw.IP("b", 50), "v-tp-clb")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := srv.Command("lb", "status").CombinedOutput()
			t.Logf("===== iks lb status\n%s", out)
			out2, _ := srv.Kubectl("get", "nodes,svc,leases", "-A", "-o", "wide", "--show-labels")
			t.Logf("===== nodes, services and leases\n%s", out2)
		}
	})

	for _, n := range []*testutil.Node{w1, w2, w3} {
		createLBPod(t, cs, "web-"+n.Name, n.Name)
	}
	for _, n := range []*testutil.Node{w1, w2, w3} {
		waitPodRunning(t, cs, "web-"+n.Name, 2*time.Minute)
	}
	answers := func(cli *testutil.Netns, ip string) {
		t.Helper()
		eventually(t, time.Minute, "GET http://"+ip+"/ from "+cli.Name, func() error {
			body, err := cli.HTTPGet(context.Background(), "http://"+ip+"/", 2*time.Second)
			if err == nil && !strings.Contains(body, "hostname=web-") {
				err = fmt.Errorf("unexpected answer %q", body)
			}
			return err
		})
	}

	t.Run("nodes carry their sides, VLANs and zone", func(t *testing.T) {
		for _, c := range []struct {
			n                         *testutil.Node
			zone, privVLAN, pubVLAN   string
			privateOnly, publicSubnet string
		}{
			{w1, "z1", "10.96.1.0-24", "10.96.4.0-24", "false", public[w1] + "/24"},
			{w2, "z1", "10.96.1.0-24", "10.96.4.0-24", "false", public[w2] + "/24"},
			{w3, "z2", "10.96.2.0-24", "", "true", ""},
		} {
			eventually(t, time.Minute, "topology labels of "+c.n.Name, func() error {
				n, err := cs.CoreV1().Nodes().Get(context.Background(), c.n.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				got := fmt.Sprintf("%s %s %s %s %s", n.Labels["topology.kubernetes.io/zone"], n.Labels["privateVLAN"],
					n.Labels["publicVLAN"], n.Labels["network.iks.io/private-only"], n.Annotations["network.iks.io/public-cidr"])
				want := fmt.Sprintf("%s %s %s %s %s", c.zone, c.privVLAN, c.pubVLAN, c.privateOnly, c.publicSubnet)
				if got != want {
					return fmt.Errorf("zone/privateVLAN/publicVLAN/private-only/public-cidr %q, want %q", got, want)
				}
				return nil
			})
		}
		// Dual-homed nodes: InternalIP private, ExternalIP public, and no
		// uninitialized taint left (server/nodeaddr).
		for _, w := range []*testutil.Node{w1, w2} {
			eventually(t, time.Minute, "addresses of "+w.Name, func() error {
				n, err := cs.CoreV1().Nodes().Get(context.Background(), w.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				got := fmt.Sprint(n.Status.Addresses, len(n.Spec.Taints))
				want := fmt.Sprintf("[{InternalIP %s} {ExternalIP %s} {Hostname %s}] 0", w.IP, public[w], w.Name)
				if got != want {
					return fmt.Errorf("addresses and taint count %s, want %s", got, want)
				}
				return nil
			})
		}
		out, err := w1.Command("net", "status").CombinedOutput()
		if err != nil || !hasRow(string(out), "public", public[w1]+"/24", "10.96.4.0-24") || !strings.Contains(string(out), "Zone: z1") {
			t.Errorf("iks net status on %s does not show its public side and zone: %v\n%s", w1.Name, err, out)
		}
	})

	var pubIP, privAIP string
	t.Run("a public IP is held on a dual-homed node's public interface and answers from the internet", func(t *testing.T) {
		createLBService(t, cs, "pub", map[string]string{"app": "web"}, nil, "", false)
		pubIP = waitLBIP(t, cs, "pub", topoPublic)
		answers(ext, pubIP)
		h := waitHolder(t, cs, pubIP, "")
		if h != w1.Name && h != w2.Name {
			t.Fatalf("public IP %s held by %s, want a dual-homed node", pubIP, h)
		}
		assertHeldOn(t, all, pubIP, h, "eth1")
	})

	t.Run("a private IP of network a stays on network a and answers there", func(t *testing.T) {
		createLBService(t, cs, "priva", map[string]string{"app": "web"},
			map[string]string{"service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type": "private",
				"service.kubernetes.io/ibm-load-balancer-cloud-provider-zone": "z1"}, "", false)
		privAIP = waitLBIP(t, cs, "priva", topoPrivateA)
		answers(cliA, privAIP)
		h := waitHolder(t, cs, privAIP, "")
		if h != w1.Name && h != w2.Name {
			t.Fatalf("private IP %s of network a held by %s, want w1 or w2", privAIP, h)
		}
		assertHeldOn(t, all, privAIP, h, "eth0")
	})

	t.Run("the zone annotation takes the IP from that zone's subnet", func(t *testing.T) {
		createLBService(t, cs, "privb", map[string]string{"app": "web"},
			map[string]string{"service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type": "private",
				"service.kubernetes.io/ibm-load-balancer-cloud-provider-zone": "z2"}, "", false)
		ip := waitLBIP(t, cs, "privb", topoPrivateB)
		answers(cliB, ip)
		if h := waitHolder(t, cs, ip, ""); h != w3.Name {
			t.Errorf("zone z2 IP %s held by %s, want %s (the only node of network b)", ip, h, w3.Name)
		}
		assertHeldOn(t, all, ip, w3.Name, "eth0")

		createLBService(t, cs, "nozone", map[string]string{"app": "web"},
			map[string]string{"service.kubernetes.io/ibm-load-balancer-cloud-provider-zone": "z9"}, "", false)
		if msg := waitEvent(t, cs, "nozone", "NoPortableSubnetInZone"); !strings.Contains(msg, `"z9"`) || !strings.Contains(msg, "z1") {
			t.Errorf("event %q does not name the zone asked for and the ones available", msg)
		}
	})

	t.Run("a subnet no node is on is reported and not used", func(t *testing.T) {
		out, err := srv.Command("lb", "status").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "none: not used (no node on its network)") {
			t.Errorf("iks lb status does not report %s as unused: %v\n%s", topoNowhere, err, out)
		}
		for _, svc := range []string{"pub", "priva", "privb"} {
			s, err := cs.CoreV1().Services("default").Get(context.Background(), svc, metav1.GetOptions{})
			if err == nil && len(s.Status.LoadBalancer.Ingress) == 1 && strings.HasPrefix(s.Status.LoadBalancer.Ingress[0].IP, "10.96.8.") {
				t.Errorf("service %s got %s from the unreachable subnet", svc, s.Status.LoadBalancer.Ingress[0].IP)
			}
		}
	})

	t.Run("a PortableSubnet adds a subnet to the running cluster; a bad one is refused at admission", func(t *testing.T) {
		apply := func(name, typ, cidr string) (string, error) {
			f := filepath.Join(t.TempDir(), name+".yaml")
			y := fmt.Sprintf("apiVersion: network.iks.io/v1\nkind: PortableSubnet\nmetadata: {name: %s}\nspec: {type: %s, cidr: %q}\n", name, typ, cidr)
			if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			return srv.Kubectl("apply", "-f", f)
		}
		if out, err := apply("pub-2", "public", "10.96.4.72/29"); err != nil {
			t.Fatalf("apply: %v: %s", err, out)
		}
		createLBService(t, cs, "added", map[string]string{"app": "web"},
			map[string]string{"service.kubernetes.io/ibm-load-balancer-cloud-provider-ip": "10.96.4.76"}, "", false)
		if ip := waitLBIP(t, cs, "added", "10.96.4.72/29"); ip != "10.96.4.76" {
			t.Errorf("service asking for 10.96.4.76 of the added subnet got %s", ip)
		}
		answers(ext, "10.96.4.76")
		out, err := apply("bad", "private", "172.30.5.0/29")
		if err == nil || !strings.Contains(out, "overlaps 172.30.0.0/16") {
			t.Errorf("a PortableSubnet inside the pod range was not refused with the reason: %v: %s", err, out)
		}
	})

	t.Run("holder of a private IP dies: the IP moves within its network, never to the private-only node elsewhere", func(t *testing.T) {
		h := waitHolder(t, cs, privAIP, "")
		holder, other := w1, w2
		if h == w2.Name {
			holder, other = w2, w1
		}
		holder.Kill()
		if err := nw.Cut(holder.Peer()); err != nil {
			t.Fatal(err)
		}
		if err := nw.Cut("p-" + strings.TrimPrefix(holder.Name, "iks-")); err != nil {
			t.Fatal(err)
		}
		answers(cliA, privAIP)
		if got := waitHolder(t, cs, privAIP, other.Name); got != other.Name {
			t.Errorf("after the holder died %s is held by %s, want %s", privAIP, got, other.Name)
		}
		assertHeldOn(t, []*testutil.Node{srv, other, w3}, privAIP, other.Name, "eth0")
		// The public IP, if it was there too, followed to the other
		// dual-homed node, never to w3.
		answers(ext, pubIP)
		assertHeldOn(t, []*testutil.Node{srv, other, w3}, pubIP, other.Name, "eth1")
	})
}

// assertHeldOn checks that exactly holder has ip, on interface dev, among
// nodes (looking at every interface of each).
func assertHeldOn(t *testing.T, nodes []*testutil.Node, ip, holder, dev string) {
	t.Helper()
	eventually(t, 30*time.Second, ip+" only on "+holder+" "+dev, func() error {
		for _, n := range nodes {
			out, _ := n.Net.Exec("ip", "-4", "-o", "addr", "show")
			var on []string
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 3 && f[3] == ip+"/32" {
					on = append(on, f[1])
				}
			}
			want := n.Name == holder
			if want && (len(on) != 1 || on[0] != dev) || !want && len(on) > 0 {
				return fmt.Errorf("%s has %s on %v", n.Name, ip, on)
			}
		}
		return nil
	})
}

func mustExec(t *testing.T, ns *testutil.Netns, args ...string) {
	t.Helper()
	if out, err := ns.Exec(args...); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}
