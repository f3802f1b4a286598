package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MountNS is a persistent mount namespace bound to a file, so a node's
// processes can be stopped and started again in the same namespace (pods'
// mounts live there). Inside it, /run, /var/lib and /var/log are private
// tmpfs mounts: what kubelet and containerd write to hard-coded host paths
// stays in the test.
type MountNS struct {
	Dir  string // private bind mount holding the ns file
	File string
}

// NewMountNS creates the namespace; it is released at cleanup, after
// every process in it has been killed by the caller's cleanups (which
// run first, being registered later).
func NewMountNS(t testing.TB, name string) *MountNS {
	t.Helper()
	dir := filepath.Join("/run/iks-test", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &MountNS{Dir: dir, File: filepath.Join(dir, "mnt")}
	MustRun(t, "mount", "--bind", dir, dir)
	t.Cleanup(func() {
		_ = exec.Command("umount", m.File).Run()
		_ = exec.Command("umount", "-l", dir).Run()
		_ = os.RemoveAll(dir)
	})
	MustRun(t, "mount", "--make-private", dir)
	if err := os.WriteFile(m.File, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	MustRun(t, "unshare", "--mount="+m.File, "--propagation", "private", "sh", "-c",
		"mount -t tmpfs -o mode=0755 iks-test /run && mount -t tmpfs -o mode=0755 iks-test /var/lib && mount -t tmpfs -o mode=0755 iks-test /var/log")
	return m
}
