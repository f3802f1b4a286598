package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// sinkPort is where every tcpsink of the throughput bench listens.
const sinkPort = "5201"

// buildHTTPD builds the test image's binary for the host: the same
// tcpsend/tcpsink the pods run, used on the raw paths with nsenter.
func buildHTTPD(t *testing.T) string {
	t.Helper()
	return testutil.BuildBinary(t, "./tests/images/httpd")
}

// vethPair creates two fresh namespaces joined by a plain veth pair
// (10.<n>.200.1 and .2) and returns them.
func vethPair(t *testing.T, prefix string, n int) (a, b *testutil.Netns, bIP string) {
	t.Helper()
	a, b = testutil.NewNetns(t, prefix+"-va"), testutil.NewNetns(t, prefix+"-vb")
	testutil.MustRun(t, "ip", "-n", a.Name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.Name)
	for i, ns := range []*testutil.Netns{a, b} {
		testutil.MustRun(t, "ip", "-n", ns.Name, "addr", "add", fmt.Sprintf("10.%d.200.%d/24", n, i+1), "dev", "eth0")
		testutil.MustRun(t, "ip", "-n", ns.Name, "link", "set", "eth0", "up")
	}
	return a, b, fmt.Sprintf("10.%d.200.2", n)
}

// vxlanPair creates two fresh namespaces on subnets a and b of nw, joined
// by a plain kernel VXLAN (VNI n, UDP 4789) through the router, with
// overlay addresses 10.<n>.201.1 and .2.
func vxlanPair(t *testing.T, nw *testutil.Network, prefix string, n int) (a, b *testutil.Netns, bIP string) {
	t.Helper()
	a, b = testutil.NewNetns(t, prefix+"-xa"), testutil.NewNetns(t, prefix+"-xb")
	under := []string{nw.IP("a", 50), nw.IP("b", 50)}
	nw.Attach(a, "a", under[0], "v-"+strings.TrimPrefix(a.Name, "iks-"))
	nw.Attach(b, "b", under[1], "v-"+strings.TrimPrefix(b.Name, "iks-"))
	for i, ns := range []*testutil.Netns{a, b} {
		testutil.MustRun(t, "ip", "-n", ns.Name, "link", "add", "vx0", "type", "vxlan", "id", strconv.Itoa(n),
			"local", under[i], "remote", under[1-i], "dstport", "4789", "dev", "eth0")
		testutil.MustRun(t, "ip", "-n", ns.Name, "addr", "add", fmt.Sprintf("10.%d.201.%d/24", n, i+1), "dev", "vx0")
		testutil.MustRun(t, "ip", "-n", ns.Name, "link", "set", "vx0", "up")
	}
	return a, b, fmt.Sprintf("10.%d.201.2", n)
}

// startSink runs tcpsink in ns until the test ends and waits until from
// can connect to it at ip.
func startSink(t *testing.T, bin string, ns, from *testutil.Netns, ip string) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+ns.Path(), "--", bin, "tcpsink", "-l", ":"+sinkPort)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitUntil(t, 30*time.Second, "tcpsink in "+ns.Name+" reachable at "+ip, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := from.DialContext(ctx, "tcp", ip+":"+sinkPort)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

var gbpsRE = regexp.MustCompile(`gbps=([0-9.]+)`)

// parseGbps reads tcpsend's result line.
func parseGbps(out string) (float64, error) {
	m := gbpsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no gbps= in tcpsend output %q", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// rawSend runs tcpsend in ns against ip.
func rawSend(bin string, ns *testutil.Netns, ip string, streams int, d time.Duration) (float64, error) {
	out, err := ns.Exec(bin, "tcpsend", "-d", d.String(), "-P", strconv.Itoa(streams), ip+":"+sinkPort)
	if err != nil {
		return 0, err
	}
	return parseGbps(out)
}

// loadavg is the machine's 1-minute load average, as text.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}
