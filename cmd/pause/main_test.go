package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestMain lets the test binary act as pause when re-executed by a test.
func TestMain(m *testing.M) {
	if os.Getenv("IKS_PAUSE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startPause(t *testing.T) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "IKS_PAUSE_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

func TestExitsZeroOnTermination(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd, stderr := startPause(t)
		// pause warns that it is not PID 1 once its handlers are installed;
		// signal it from then on until it exits (bounded).
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%v: pause exited with %v (stderr %q), want 0", sig, err, stderr.String())
				}
				break wait
			case <-tick.C:
				if strings.Contains(stderr.String(), "first process") {
					_ = cmd.Process.Signal(sig)
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("%v: pause did not exit", sig)
			}
		}
		tick.Stop()
		if !strings.Contains(stderr.String(), "Shutting down") {
			t.Errorf("%v: stderr %q lacks the shutdown message", sig, stderr.String())
		}
	}
}

func TestReapCollectsExitedChildren(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		testutil.Unavailable(t, "no `true` binary: %v", err)
	}
	var pids []int
	for range 3 {
		pid, err := syscall.ForkExec(truePath, []string{"true"}, &syscall.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	// Wait until every child has exited (a zombie), without reaping it.
	for _, pid := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("child %d did not exit", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	reap()
	for _, pid := range pids {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
			t.Errorf("child %d was not reaped (wait4 err %v)", pid, err)
		}
	}
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
