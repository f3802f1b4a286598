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

// Charon is a stock strongSwan (Debian's charon-systemd with
// kernel-libipsec, configured with swanctl) running in a test network
// namespace: the remote VPN site of the VPN tests and benchmarks.
type Charon struct {
	t    testing.TB
	NS   *Netns
	Dir  string // strongswan.conf, swanctl.conf, charon.vici, logs
	proc *exec.Cmd
}

// StartCharon starts charon in ns with swanctlConf loaded; it is killed
// at the end of the test. Its log (streamed by swanctl --log) is
// Dir/charon.log.
func StartCharon(t testing.TB, ns *Netns, swanctlConf string) *Charon {
	t.Helper()
	RequireTools(t, "charon-systemd libcharon-extra-plugins", "/usr/sbin/charon-systemd")
	RequireTools(t, "strongswan-swanctl", "swanctl")
	c := &Charon{t: t, NS: ns, Dir: t.TempDir()}
	conf := fmt.Sprintf(`charon-systemd {
  load = random nonce openssl pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  journal { default = -1 }
  plugins { vici { socket = unix://%s/charon.vici } }
}
`, c.Dir)
	if err := os.WriteFile(filepath.Join(c.Dir, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Start()
	c.Load(swanctlConf)
	// charon-systemd logs to the journal only: swanctl --log streams it.
	c.spawn("charon", "", "swanctl", "--log", "--uri", c.uri())
	return c
}

func (c *Charon) uri() string { return "unix://" + c.Dir + "/charon.vici" }

// Start (re)starts the charon daemon; Load must follow.
func (c *Charon) Start() {
	c.t.Helper()
	_ = os.Remove(filepath.Join(c.Dir, "charon.vici"))
	c.proc = c.spawn("charon-daemon", "STRONGSWAN_CONF="+filepath.Join(c.Dir, "strongswan.conf"), "/usr/sbin/charon-systemd")
}

// Pid is the running daemon's process ID (0 when stopped).
func (c *Charon) Pid() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.Process.Pid
}

// Kill stops the daemon at once (SIGKILL), as a crash.
func (c *Charon) Kill() {
	if c.proc != nil {
		_ = syscall.Kill(-c.proc.Process.Pid, syscall.SIGKILL)
		_ = c.proc.Wait()
		c.proc = nil
	}
}

// Load writes swanctlConf and loads it (connections and secrets),
// waiting for the daemon's VICI socket.
func (c *Charon) Load(swanctlConf string) {
	c.t.Helper()
	f := filepath.Join(c.Dir, "swanctl.conf")
	if err := os.WriteFile(f, []byte(swanctlConf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	var out string
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = c.Swanctl("--load-all", "--file", f); err == nil {
			return
		}
	}
	c.t.Fatalf("swanctl --load-all in %s: %v: %s", c.NS.Name, err, out)
}

// Swanctl runs swanctl against this charon.
func (c *Charon) Swanctl(args ...string) (string, error) {
	full := append([]string{"--net=" + c.NS.Path(), "--", "swanctl"}, args...)
	full = append(full, "--uri", c.uri())
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Log is what charon logged so far.
func (c *Charon) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "charon.log"))
	return string(b)
}

// spawn runs bin in the namespace with one extra environment entry,
// killed (its process group) at the end of the test.
func (c *Charon) spawn(name, env string, bin string, args ...string) *exec.Cmd {
	c.t.Helper()
	return SpawnIn(c.t, c.NS, filepath.Join(c.Dir, name+".log"), env, bin, args...)
}

// SpawnIn runs bin with args in ns (its output appended to logPath, one
// extra environment entry when env is not empty) and kills its process
// group at the end of the test.
func SpawnIn(t testing.TB, ns *Netns, logPath, env, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--", bin}, args...)...)
	cmd.Env = os.Environ()
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", bin, ns.Name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = log.Close()
	})
	return cmd
}
