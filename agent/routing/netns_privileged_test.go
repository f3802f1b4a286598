package routing

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The privileged tests build their topology from named network
// namespaces they create (`ip netns add`) and remove when the test ends,
// pass or fail; nothing touches the machine's own namespace.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// newNS creates a named namespace with lo up, removed at cleanup.
func newNS(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("iks-bg%d%s", os.Getpid()%100000, suffix)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("remove namespace %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// run runs a command and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs fn on a thread that entered the namespace. Sockets created
// and processes started by fn belong to that namespace. fn must not call
// t.Fatal.
func inNS(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", ns, err)
	}
	defer func() {
		// A thread that cannot go back stays locked and dies with the
		// goroutine, so no other goroutine runs in the wrong namespace.
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("leave %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// ipRoute is the part of `ip -j route` the tests look at.
type ipRoute struct {
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Flags    []string `json:"flags"`
}

// ownedRoutesIn returns the proto-81 routes of a namespace by destination.
func ownedRoutesIn(t *testing.T, ns string) map[string]ipRoute {
	t.Helper()
	var rs []ipRoute
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "route", "show", "proto", "81")), &rs); err != nil {
		t.Fatalf("parse routes of %s: %v", ns, err)
	}
	out := map[string]ipRoute{}
	for _, r := range rs {
		out[r.Dst] = r
	}
	return out
}

// rxPackets returns the received packet count of a device.
func rxPackets(t *testing.T, ns, dev string) uint64 {
	t.Helper()
	var links []struct {
		Stats struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "-s", "link", "show", dev)), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse stats of %s in %s: %v", dev, ns, err)
	}
	return links[0].Stats.RX.Packets
}
