// Package containerd runs containerd v2 as a supervised child process
// re-executed from the iks binary, writes its configuration, and imports
// the images iks carries plus any side-loaded archives.
package containerd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/iks-dev/iks/embedded"

	"github.com/iks-dev/iks/internal/fsutil"
)

// PauseImage is the sandbox image built from this repository.
const PauseImage = embedded.PauseImage

// Config for the containerd child.
type Config struct {
	Root          string // persistent: content, snapshots
	State         string // volatile: shim sockets, netns mounts
	Socket        string
	BinDir        string // runc and CNI plugins
	CNIConfDir    string
	ImagesDir     string // side-loaded *.tar archives
	Exe           string // the iks binary to re-exec
	SystemdCgroup bool
	// RestrictOOMScoreAdj is needed where the process lacks
	// CAP_SYS_RESOURCE (or runs in a user namespace): runc could not lower
	// OOM scores and every pod would fail to start.
	RestrictOOMScoreAdj bool
	Debug               bool
}

var configTmpl = template.Must(template.New("config").Parse(`# Written by iks at every start; edit /etc/iks/config.yaml instead.
version = 3
root = "{{.Root}}"
state = "{{.State}}"

[grpc]
  address = "{{.Socket}}"

[ttrpc]
  address = "{{.Socket}}.ttrpc"

[debug]
  level = "{{if .Debug}}debug{{else}}warn{{end}}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Root}}/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{{.PauseImage}}"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = {{.RestrictOOMScoreAdj}}
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = {{.SystemdCgroup}}
        BinaryName = "{{.BinDir}}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{{.BinDir}}"]
    conf_dir = "{{.CNIConfDir}}"
    use_internal_loopback = true
`))

// Render returns the config.toml content.
func (c Config) Render() ([]byte, error) {
	var b bytes.Buffer
	data := struct {
		Config
		PauseImage string
	}{c, PauseImage}
	if err := configTmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render containerd config: %w", err)
	}
	return b.Bytes(), nil
}

// ConfigPath is where the rendered config is written.
func (c Config) ConfigPath() string { return filepath.Join(c.Root, "config.toml") }

// WriteConfig writes config.toml atomically.
func (c Config) WriteConfig() error {
	data, err := c.Render()
	if err != nil {
		return err
	}
	for _, d := range []string{c.Root, c.State, filepath.Dir(c.Socket), c.CNIConfDir, c.ImagesDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return fsutil.WriteFileAtomic(c.ConfigPath(), data, 0o600)
}

// capSysResource is the bit of CAP_SYS_RESOURCE in the capability sets.
const capSysResource = 24

// NeedsRestrictOOMScoreAdj reports whether this process cannot lower OOM
// scores: it lacks CAP_SYS_RESOURCE (as in some VMs and containers) or
// runs in a user namespace (the check k3s makes).
func NeedsRestrictOOMScoreAdj() bool {
	if inUserNS() {
		return true
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return true
			}
			return caps&(1<<capSysResource) == 0
		}
	}
	return true
}

func inUserNS() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// UseSystemdCgroup reports whether systemd manages cgroups here (systemd
// is running and cgroup v2 is unified), so kubelet and runc must use the
// systemd driver.
func UseSystemdCgroup() bool {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return false
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}
