// Package testutil has the helpers of iks's integration and e2e tests:
// network and mount namespaces for nodes, a node process harness, and
// test images built from this repository.
package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a named network namespace the test created (/run/netns/NAME).
type Netns struct {
	Name string
}

// Path of the namespace file.
func (n *Netns) Path() string { return "/run/netns/" + n.Name }

// NewNetns creates a network namespace with lo up, deleted at cleanup.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	MustRun(t, "ip", "netns", "add", name)
	n := &Netns{Name: name}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	MustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return n
}

// Exec runs a command inside the namespace (with nsenter --net, which
// keeps /sys and the cgroup mounts, unlike `ip netns exec`).
func (n *Netns) Exec(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// DialContext dials from inside the namespace: the socket is created on a
// thread that entered it, then used from anywhere.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays locked and dies with this goroutine, so its
		// changed namespace never leaks to other goroutines.
		runtime.LockOSThread()
		f, err := os.Open(n.Path())
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", n.Path(), err)}
			return
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// MustRun runs a host command and fails the test on error.
func MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NetnsName returns a namespace name unique to this test process, for
// package tests that may run next to other copies of themselves.
func NetnsName(suffix string) string {
	return fmt.Sprintf("iks-t%d-%s", os.Getpid()%100000, suffix)
}

// InNetns runs fn on a thread inside the named namespace (see Netns.Do).
func InNetns(name string, fn func() error) error { return (&Netns{Name: name}).Do(fn) }
