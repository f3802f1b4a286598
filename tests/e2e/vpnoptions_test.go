package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

// gatewayConns is `swanctl --list-conns --raw` against the charon of a
// connection's gateway: the host's swanctl on the VICI socket of the
// gateway's supervisor (cmd/iks-vpn, environment IKS_VPN_NAME=conn),
// reached through /proc/PID/root (the container's mounts).
func gatewayConns(conn string) (string, error) {
	envs, err := filepath.Glob("/proc/[0-9]*/environ")
	if err != nil {
		return "", err
	}
	want := []byte("IKS_VPN_NAME=" + conn + "\x00")
	for _, f := range envs {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, want) || !bytes.Contains(b, []byte("IKS_VPN_RUN_DIR=")) {
			continue
		}
		dir := filepath.Dir(f)
		sock := dir + "/root/run/iks-vpn/charon.vici"
		if _, err := os.Stat(sock); err != nil {
			continue // not the supervisor, or charon not up yet
		}
		out, err := exec.Command("swanctl", "--list-conns", "--raw", "--uri", "unix://"+sock).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("swanctl on %s: %v: %s", sock, err, lastLines(string(out), 3))
		}
		return string(out), nil
	}
	return "", fmt.Errorf("no gateway supervisor of %s with a VICI socket", conn)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// expectConns polls the gateway's loaded connection until it shows
// every want (swanctl --raw keys, e.g. dpd_action=start).
func expectConns(t *testing.T, conn string, want ...string) {
	t.Helper()
	eventually(t, 20*time.Second, "charon of "+conn+" loaded with "+strings.Join(want, " "), func() error {
		out, err := gatewayConns(conn)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("no %q in %s", w, out)
			}
		}
		return nil
	})
}

// testVPNRefusedOptions: the chart's options iks refuses or checks are
// each named in condition Valid, and no gateway runs.
func testVPNRefusedOptions(t *testing.T, srv *testutil.Node, cs kubernetes.Interface, dyn dynamic.Interface) {
	t.Helper()
	applyVPN(t, srv, `{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"badopts"},
"spec":{"ipsec":{"dpdaction":"sometimes","additionalOptions":"dpddelay=30s"},"strongswanLogging":"ike = 9",
"monitoring":{"enable":true},"zoneSpecificRoutes":true,"remote":{"subnet":"10.253.0.0/24"},"preshared":{"secretName":"site-psk"}}}`)
	c := waitVPN(t, dyn, "badopts", 30*time.Second, func(c *vpnconn.Conn) error {
		if v := c.Status.Condition(vpnconn.ConditionValid); v == nil || v.Status != metav1.ConditionFalse {
			return fmt.Errorf("Valid %+v, want False", v)
		}
		return nil
	})
	msg := c.Status.Condition(vpnconn.ConditionValid).Message
	for _, want := range []string{`ipsec.dpdaction "sometimes": use one of none, clear, hold, restart`,
		`ipsec.additionalOptions "dpddelay=30s" is not supported`, `strongswanLogging "ike = 9"`,
		"monitoring.enable true is not supported", "zoneSpecificRoutes needs zoneSelector"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Valid message lacks %q:\n%s", want, msg)
		}
	}
	if _, err := cs.AppsV1().Deployments(vpnconn.Namespace).Get(context.Background(), "iks-vpn-badopts", metav1.GetOptions{}); err == nil {
		t.Error("a gateway runs for connection badopts")
	}
	if out, err := srv.Kubectl("delete", "vpnconnection", "badopts", "--wait=true"); err != nil {
		t.Errorf("delete badopts: %v: %s", err, out)
	}
}
