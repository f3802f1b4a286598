package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// checkPodNetwork asserts the Calico-style network across nodes: pods on
// a node of the same subnet are routed natively, across subnets through
// the tunnel; pod↔pod and node→pod keep source IPs; pod→outside is NATed
// to the node IP.
func checkPodNetwork(t *testing.T, nw *testutil.Network, cs kubernetes.Interface, srv, same, other *testutil.Node) {
	ctx := context.Background()
	ip := func(pod string) string {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Status.PodIP
	}
	src, dstSame, dstOther := ip("web-"+srv.Name), ip("web-"+same.Name), ip("web-"+other.Name)

	t.Run("node to pods on other nodes", func(t *testing.T) {
		for _, dst := range []string{dstSame, dstOther} {
			eventually(t, time.Minute, "server → pod "+dst, func() error {
				_, err := srv.HTTPGet(ctx, "http://"+dst+":8080/")
				return err
			})
		}
	})

	t.Run("pod to pod keeps the source IP, native in-subnet, tunnelled across", func(t *testing.T) {
		routeSame, _ := srv.Net.Exec("ip", "route", "get", dstSame)
		routeOther, _ := srv.Net.Exec("ip", "route", "get", dstOther)
		if strings.Contains(routeSame, "vxlan") || !strings.Contains(routeSame, "via "+same.IP) {
			t.Errorf("route to a pod on the same subnet is not native via %s: %s", same.IP, routeSame)
		}
		if !strings.Contains(routeOther, "iks.vxlan") {
			t.Errorf("route to a pod across subnets is not through iks.vxlan: %s", routeOther)
		}
		before := vxlanTX(t, srv)
		for _, dst := range []string{dstSame, dstOther} {
			eventually(t, time.Minute, "pod "+src+" → pod "+dst, func() error {
				out, err := srv.Kubectl("exec", "web-"+srv.Name, "--", "/httpd", "get", "http://"+dst+":8080/whoami")
				if err == nil && !strings.Contains(out, "client="+src) {
					err = fmt.Errorf("pod %s saw client %q, want the pod IP %s (no NAT)", dst, out, src)
				}
				return err
			})
		}
		if after := vxlanTX(t, srv); after <= before {
			t.Errorf("iks.vxlan TX packets did not move across subnets: %d -> %d", before, after)
		}
	})

	t.Run("pod to outside is NATed to the node IP", func(t *testing.T) {
		ext := testutil.NewNetns(t, "iks-e2e-ext")
		extIP := nw.IP("ext", 10)
		nw.Attach(ext, "ext", extIP, "v-ext")
		bin := testutil.BuildBinary(t, "./tests/images/httpd")
		server := exec.Command("nsenter", "--net="+ext.Path(), "--", bin)
		server.Env = append(os.Environ(), "PORT=8080")
		server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
		eventually(t, time.Minute, "pod → external host", func() error {
			out, err := srv.Kubectl("exec", "web-"+other.Name, "--", "/httpd", "get", "http://"+extIP+":8080/whoami")
			if err == nil && !strings.Contains(out, "client="+other.IP) {
				err = fmt.Errorf("external host saw %q, want the node IP %s", out, other.IP)
			}
			return err
		})
	})
}

func vxlanTX(t *testing.T, n *testutil.Node) int64 {
	t.Helper()
	// ip, not /sys: nsenter --net keeps the host's sysfs.
	out, err := n.Net.Exec("ip", "-j", "-s", "link", "show", "dev", "iks.vxlan")
	if err != nil {
		t.Fatalf("no iks.vxlan on %s: %v", n.Name, err)
	}
	var links []struct {
		Stats struct {
			TX struct {
				Packets int64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse ip -j -s link: %v: %s", err, out)
	}
	return links[0].Stats.TX.Packets
}
