package routing

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// The privileged tests build their topology from named network
// namespaces they create (`ip netns add`) and remove when the test ends,
// pass or fail; nothing touches the machine's own namespace.

// run runs a command and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
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
