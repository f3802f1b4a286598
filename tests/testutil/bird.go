package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BIRD is a BIRD 2 routing daemon (Debian bird2) the test started in a
// network namespace; it is killed (by its PID only) at cleanup.
type BIRD struct {
	Sock    string
	LogPath string
	cmd     *exec.Cmd
	done    chan error
}

// StartBIRD runs `bird -f` with config conf inside the named namespace
// and waits until its control socket answers. It skips the test when
// bird is not installed (fails it when IKS_REQUIRE_PRIVILEGED=1).
func StartBIRD(t testing.TB, netns, conf string) *BIRD {
	t.Helper()
	RequireTools(t, "bird2", "bird", "birdc")
	bin, err := exec.LookPath("bird")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := &BIRD{Sock: filepath.Join(dir, "bird.ctl"), LogPath: filepath.Join(dir, "bird.log"), done: make(chan error, 1)}
	confPath := filepath.Join(dir, "bird.conf")
	conf = fmt.Sprintf("log %q all;\n%s", b.LogPath, conf)
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("ip", "netns", "exec", netns, bin, "-c", confPath, "-s", b.Sock, "-f")
	out := &strings.Builder{}
	b.cmd.Stdout, b.cmd.Stderr = out, out
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start bird: %v", err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill() // `ip netns exec` execs bird: this is bird's PID
		<-b.done
		if t.Failed() {
			log, _ := os.ReadFile(b.LogPath)
			t.Logf("===== BIRD log\n%s\n%s", log, out)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.Birdc("show status"); err == nil {
			return b
		}
		select {
		case err := <-b.done:
			t.Fatalf("bird exited: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bird control socket %s not answering\n%s", b.Sock, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Birdc runs one birdc command against this BIRD.
func (b *BIRD) Birdc(command string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Sock}, strings.Fields(command)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", command, err, out)
	}
	return string(out), nil
}
