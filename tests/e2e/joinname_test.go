package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/nodeclaim"
	"github.com/iks-dev/iks/tests/testutil"
)

// waitTokenFile polls for the server's token file, as a script would, and
// returns the token the moment the file appears.
func waitTokenFile(t *testing.T, srv *testutil.Node, timeout time.Duration) string {
	t.Helper()
	path := filepath.Join(srv.DataDir, "server", "token")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(data))
		}
		if exited, err := srv.Exited(); exited {
			t.Fatalf("%s exited before writing %s: %v\n%s", srv.Name, path, err, srv.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not written after %s", path, timeout)
	return ""
}

// checkTakenNameRefused starts a second machine, clone (an agent not yet
// started), with first's node name: it must exit non-zero at join with
// the name and the fix, register and keep nothing, and leave first's Node
// as it was. Then, with --with-node-id, it joins under a name of its own.
func checkTakenNameRefused(t *testing.T, cs kubernetes.Interface, clone, first *testutil.Node) {
	ctx := context.Background()
	n0, err := cs.CoreV1().Nodes().Get(ctx, first.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runWithin(clone.Command(clone.Args("--node-name", first.Name)...), 3*time.Minute)
	if errors.Is(err, errTimedOut) {
		t.Fatalf("a second machine with the taken name %s neither joined nor was refused: %v\n%s", first.Name, err, out)
	}
	if err == nil {
		t.Fatalf("a second machine joined with the taken name %s:\n%s", first.Name, out)
	}
	t.Logf("refused (%v): %s", err, lastLine(out))
	for _, want := range []string{fmt.Sprintf("%q", first.Name), "--node-name NAME", "--with-node-id"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "node "+first.Name+" is Ready") {
		t.Errorf("the refused agent reported its node Ready:\n%s", out)
	}
	// Only its node password is kept: no credentials, no kubelet state.
	for _, f := range listFiles(clone.DataDir, "agent") {
		if f != nodeclaim.KeyFile(filepath.Join(clone.DataDir, "agent")) {
			t.Errorf("refused agent wrote %s", f)
		}
	}
	after, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) != len(before.Items) {
		t.Errorf("nodes: %d before, %d after the refused join", len(before.Items), len(after.Items))
	}
	n1, err := cs.CoreV1().Nodes().Get(ctx, first.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n1.UID != n0.UID || !nodeHasIP(n1, first.IP) || nodeHasIP(n1, clone.IP) {
		t.Errorf("node %s changed: uid %s -> %s, addresses %v", first.Name, n0.UID, n1.UID, n1.Status.Addresses)
	}
	if exited, err := first.Exited(); exited {
		t.Fatalf("%s's agent died: %v", first.Name, err)
	}
	waitNodesReady(t, cs, len(before.Items), time.Minute)

	// The fix the refusal names: --with-node-id gives the clone a name of
	// its own, kept in its data dir.
	clone.Start("--node-name", first.Name, "--with-node-id")
	var name string
	eventually(t, 3*time.Minute, "clone Ready with --with-node-id", func() error {
		if exited, err := clone.Exited(); exited {
			t.Fatalf("clone with --with-node-id exited: %v\n%s", err, clone.Log())
		}
		data, err := os.ReadFile(config.NodeIDFile(clone.DataDir))
		if err != nil {
			return err
		}
		name = first.Name + "-" + strings.TrimSpace(string(data))
		if !strings.Contains(clone.Log(), "node "+name+" is Ready") {
			return fmt.Errorf("%s not Ready yet", name)
		}
		return nil
	})
	if _, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("node %s of the clone: %v", name, err)
	}
	if _, err := clone.Stop(30 * time.Second); err != nil {
		t.Error(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
}

func nodeHasIP(n *corev1.Node, ip string) bool {
	for _, a := range n.Status.Addresses {
		if a.Address == ip {
			return true
		}
	}
	return false
}

// errTimedOut: runWithin killed the command.
var errTimedOut = errors.New("timed out")

// runWithin runs cmd, killing it after timeout, and returns its output.
func runWithin(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%w: still running after %s", errTimedOut, timeout)
	}
}
