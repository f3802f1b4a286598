package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// birdE2EConf: the router namespace is a ToR in AS 64600 peering with
// every node on its subnet (10.97.1.0/24 = a, 10.97.2.0/24 = b) and
// sending them a default route, which they must ignore.
const birdE2EConf = `
router id 10.97.1.254;
protocol device {}
protocol static { ipv4; route 0.0.0.0/0 blackhole; }
template bgp node {
	local as 64600;
	ipv4 { import all; export all; next hop self; };
	connect retry time 1;
	error wait time 1, 5;
}
protocol bgp bg_s from node { neighbor 10.97.1.1 as 64512; source address 10.97.1.254; }
protocol bgp bg_w1 from node { neighbor 10.97.1.2 as 64512; source address 10.97.1.254; }
protocol bgp bg_w2 from node { neighbor 10.97.2.1 as 64512; source address 10.97.2.254; }
`

const bgpPeersYAML = `
apiVersion: network.iks.io/v1
kind: BGPPeer
metadata: {name: tor-a}
spec: {peerIP: 10.97.1.254, asNumber: 64600, nodeSelector: "tor == 'a'"}
---
apiVersion: network.iks.io/v1
kind: BGPPeer
metadata: {name: tor-b}
spec: {peerIP: 10.97.2.254, asNumber: 64600, nodeSelector: "tor == 'b'"}
`

// netStatus is the part of `iks net status --json` the test reads.
type netStatus struct {
	Encapsulation, EncapMode string
	GracefulRestartTime      time.Duration
	Peers                    []struct{ IP, Name, Type, State string }
	Routes                   []struct {
		Dst, NextHop string
		Stale        bool
	}
}

func TestBGPPeers(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "bg", 97)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	bird := testutil.StartBIRD(t, nw.Router.Name, birdE2EConf)
	gr := []string{"--bgp-graceful-restart-time", "5s"}

	srv := testutil.NewNodeOn(t, "bg-s", nw, "a", 1)
	srv.Start(append(gr, "--node-label", "tor=a")...)
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, filepath.Join(srv.DataDir, "server", "token")))
	url := "https://" + srv.IP + ":6443"
	w1 := testutil.NewNodeOn(t, "bg-w1", nw, "a", 2).AsAgent(url, token)
	w2 := testutil.NewNodeOn(t, "bg-w2", nw, "b", 1).AsAgent(url, token)
	w1.Start(append(gr, "--node-label", "tor=a")...)
	w2.StageImage(img, "httpd.tar")
	w2args := append(gr, "--node-label", "tor=b")
	w2.Start(w2args...)
	w1.WaitReady(3 * time.Minute)
	w2.WaitReady(3 * time.Minute)
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)
	ctx := context.Background()

	t.Run("BGPPeer validation", func(t *testing.T) {
		bad := `{"apiVersion":"network.iks.io/v1","kind":"BGPPeer","metadata":{"name":"bad-ip"},"spec":{"peerIP":"10.97.1.300","asNumber":64600}}`
		if out, err := applyJSON(srv, bad); err == nil || !strings.Contains(out, "peerIP") {
			t.Errorf("BGPPeer with a bad IP accepted or unclear: %v\n%s", err, out)
		}
		bad = `{"apiVersion":"network.iks.io/v1","kind":"BGPPeer","metadata":{"name":"bad-as"},"spec":{"peerIP":"10.97.1.254","asNumber":0}}`
		if out, err := applyJSON(srv, bad); err == nil || !strings.Contains(out, "asNumber") {
			t.Errorf("BGPPeer with AS 0 accepted or unclear: %v\n%s", err, out)
		}
		sel := `{"apiVersion":"network.iks.io/v1","kind":"BGPPeer","metadata":{"name":"bad-selector"},"spec":{"peerIP":"10.97.1.254","asNumber":64600,"nodeSelector":"tor = a"}}`
		if out, err := applyJSON(srv, sel); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		eventually(t, 30*time.Second, "Warning InvalidBGPPeer on bad-selector", func() error {
			evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=bad-selector"})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == "InvalidBGPPeer" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "tor = a") {
					return nil
				}
			}
			return fmt.Errorf("no InvalidBGPPeer event yet: %+v", evs.Items)
		})
	})

	if out, err := applyYAML(srv, bgpPeersYAML); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	nodes := []*testutil.Node{srv, w1, w2}
	blocks := map[string]string{}
	bc := srv.BlockClient(srv.Kubeconfig())
	for _, b := range listBlocks(t, bc) {
		if _, seen := blocks[b.Spec.Node]; !seen {
			blocks[b.Spec.Node] = b.Spec.CIDR // each node's first block
		}
	}
	for _, n := range nodes {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil || blocks[n.Name] == "" {
			t.Fatalf("node %s has no pod block (IPAMBlocks: %v): %v", n.Name, blocks, err)
		}
		if a := node.Annotations["network.iks.io/encapsulation"]; a != "VXLAN CrossSubnet" {
			t.Errorf("node %s: encapsulation annotation %q, want \"VXLAN CrossSubnet\"", n.Name, a)
		}
		if a := node.Annotations["network.iks.io/ipv4-address"]; a != n.IP+"/24" {
			t.Errorf("node %s: ipv4-address annotation %q, want %s/24", n.Name, a, n.IP)
		}
	}

	t.Run("BIRD learns every node's block via that node", func(t *testing.T) {
		eventually(t, 90*time.Second, "BIRD routes", func() error { return birdHas(bird, blocks, nodes...) })
		for _, n := range nodes {
			if out, _ := n.Net.Exec("ip", "route", "show", "proto", "81"); strings.Contains(out, "default") {
				t.Errorf("%s installed BIRD's default route:\n%s", n.Name, out)
			}
		}
	})

	t.Run("iks net status", func(t *testing.T) {
		var st netStatus
		eventually(t, 30*time.Second, "net status: 2 established mesh peers and the ToR", func() error {
			out, err := srv.Command("net", "status", "--json").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			mesh, ext := 0, 0
			for _, p := range st.Peers {
				switch {
				case p.Type == "mesh" && p.State == "established":
					mesh++
				case p.Type == "external" && p.State == "established":
					ext++
				}
			}
			if mesh != 2 || ext != 1 || st.Encapsulation != "vxlan" || st.EncapMode != "CrossSubnet" || st.GracefulRestartTime != 5*time.Second {
				return fmt.Errorf("status %s", out)
			}
			return nil
		})
		out, err := srv.Command("net", "status").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "bgppeer/tor-a") {
			t.Errorf("iks net status: %v\n%s", err, out)
		}
		t.Logf("iks net status:\n%s", out)
	})

	createPod(t, cs, "web-"+w2.Name, w2.Name)
	waitPodRunning(t, cs, "web-"+w2.Name, 2*time.Minute)
	podIP := func() string {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "web-"+w2.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Status.PodIP
	}()
	t.Run("pod MTU leaves room for the VXLAN header", func(t *testing.T) {
		out, err := w2.Net.Exec("ip", "-j", "link", "show", "type", "veth")
		if err != nil {
			t.Fatal(err)
		}
		var links []struct {
			IfName string `json:"ifname"`
			MTU    int    `json:"mtu"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range links {
			if strings.HasPrefix(l.IfName, "cali") {
				found = true
				if l.MTU != 1450 {
					t.Errorf("pod veth %s has MTU %d, want 1450 (uplink 1500 - 50 for VXLAN)", l.IfName, l.MTU)
				}
			}
		}
		if !found {
			t.Errorf("no pod veth on %s: %s", w2.Name, out)
		}
	})
	eventually(t, time.Minute, "server reaches the pod on w2", func() error {
		_, err := srv.HTTPGet(ctx, "http://"+podIP+":8080/")
		return err
	})

	t.Run("deleted worker: BIRD and the server forget its block", func(t *testing.T) {
		if _, err := w1.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Nodes().Delete(ctx, w1.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		eventually(t, 10*time.Second, "server drops w1's block", func() error { return noRoute(srv, blocks[w1.Name]) })
		eventually(t, 60*time.Second, "BIRD forgets w1's block", func() error {
			out, err := bird.Birdc("show route")
			if err == nil && strings.Contains(out, blocks[w1.Name]) {
				err = fmt.Errorf("BIRD still routes %s:\n%s", blocks[w1.Name], out)
			}
			return err
		})
		t.Logf("BIRD forgot w1's block %s after deletion", time.Since(deleted).Round(100*time.Millisecond))
	})

	t.Run("kill -9 of a worker: route kept for the restart time, then withdrawn; back after restart", func(t *testing.T) {
		w2.Kill()
		killed := time.Now()
		if err := routeVia(srv, blocks[w2.Name]); err != nil {
			t.Fatalf("route to w2's block gone right after the kill (graceful restart should keep it): %v", err)
		}
		eventually(t, 30*time.Second, "server withdraws w2's block after the restart time", func() error {
			return noRoute(srv, blocks[w2.Name])
		})
		if d := time.Since(killed); d < 4*time.Second {
			t.Errorf("w2's route withdrawn %s after the kill, before the 5s restart time", d)
		}
		t.Logf("w2's block withdrawn %s after kill -9 (restart time 5s)", time.Since(killed).Round(100*time.Millisecond))
		w2.Start(w2args...)
		w2.WaitReady(3 * time.Minute)
		eventually(t, time.Minute, "server routes w2's block again", func() error { return routeVia(srv, blocks[w2.Name]) })
		eventually(t, time.Minute, "server reaches the pod on w2 after its restart", func() error {
			_, err := srv.HTTPGet(ctx, "http://"+podIP+":8080/")
			return err
		})
	})
}

func birdHas(bird *testutil.BIRD, blocks map[string]string, nodes ...*testutil.Node) error {
	out, err := bird.Birdc("show route")
	if err != nil {
		return err
	}
	for _, n := range nodes {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), blocks[n.Name]) {
				line = l
			}
		}
		if line == "" {
			return fmt.Errorf("BIRD has no route to %s's block %s:\n%s", n.Name, blocks[n.Name], out)
		}
		if full, _ := bird.Birdc("show route " + blocks[n.Name] + " all"); !strings.Contains(full, "via "+n.IP) {
			return fmt.Errorf("BIRD routes %s's block %s not via %s:\n%s", n.Name, blocks[n.Name], n.IP, full)
		}
	}
	return nil
}

func routeVia(n *testutil.Node, block string) error {
	out, err := n.Net.Exec("ip", "route", "show", block, "proto", "81")
	if err == nil && !strings.Contains(out, block) {
		err = fmt.Errorf("%s has no route to %s", n.Name, block)
	}
	return err
}

func noRoute(n *testutil.Node, block string) error {
	out, err := n.Net.Exec("ip", "route", "show", block, "proto", "81")
	if err == nil && strings.Contains(out, block) {
		err = fmt.Errorf("%s still routes %s: %s", n.Name, block, out)
	}
	return err
}

func applyJSON(n *testutil.Node, doc string) (string, error) { return applyYAML(n, doc) }

func applyYAML(n *testutil.Node, doc string) (string, error) {
	cmd := n.Command("kubectl", "--kubeconfig", n.Kubeconfig(), "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(doc)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
