package config

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
)

// kernelProbe answers "does this kernel have feature X" from what a host
// shows without root or side effects: /sys/module (loaded modules), the
// kernel's build configuration (/proc/config.gz or /boot/config-RELEASE)
// and /lib/modules/RELEASE/modules.{builtin,dep}. Nothing is loaded.
type kernelProbe struct {
	env     Env
	release string
	config  map[string]string // CONFIG_X -> y|m; nil when no config is readable
	cfgFrom string
	builtin map[string]bool // module names from modules.builtin; nil when unreadable
	modules map[string]bool // module names from modules.dep; nil when unreadable
}

// featureState is what the probe learnt about one feature.
type featureState int

const (
	stateUnknown featureState = iota
	stateFound
	stateMissing
)

func newKernelProbe(env Env) *kernelProbe {
	k := &kernelProbe{env: env}
	if data, err := env.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		k.release = strings.TrimSpace(string(data))
	}
	k.config, k.cfgFrom = readKernelConfig(env, k.release)
	if k.release != "" {
		dir := filepath.Join("/lib/modules", k.release)
		k.builtin = readModuleList(env, filepath.Join(dir, "modules.builtin"))
		k.modules = readModuleList(env, filepath.Join(dir, "modules.dep"))
	}
	return k
}

// readKernelConfig parses /proc/config.gz, or /boot/config-RELEASE.
func readKernelConfig(env Env, release string) (map[string]string, string) {
	paths := []string{"/proc/config.gz"}
	if release != "" {
		paths = append(paths, "/boot/config-"+release)
	}
	for _, p := range paths {
		data, err := env.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				continue
			}
			data, err = io.ReadAll(zr)
			if err != nil {
				continue
			}
		}
		cfg := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			if ok && strings.HasPrefix(k, "CONFIG_") {
				cfg[k] = strings.Trim(v, `"`)
			}
		}
		return cfg, p
	}
	return nil, ""
}

// readModuleList returns the module names (file base names without .ko*)
// a modules.builtin or modules.dep file lists, '-' written as '_'.
func readModuleList(env Env, path string) map[string]bool {
	data, err := env.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		file, _, _ := strings.Cut(sc.Text(), ":")
		base := filepath.Base(strings.TrimSpace(file))
		if i := strings.Index(base, ".ko"); i > 0 {
			out[strings.ReplaceAll(base[:i], "-", "_")] = true
		}
	}
	return out
}

// module reports whether the kernel has module (as a loaded or loadable
// module, or built in), judging by its build symbol too, with how it knows.
func (k *kernelProbe) module(name, symbol string) (featureState, string) {
	if k.env.Stat(filepath.Join("/sys/module", name)) == nil {
		return stateFound, "loaded"
	}
	if k.config != nil && symbol != "" {
		switch k.config[symbol] {
		case "y":
			return stateFound, "built in"
		case "m":
			return stateFound, "module"
		default:
			return stateMissing, fmt.Sprintf("%s is not set in %s", symbol, k.cfgFrom)
		}
	}
	norm := strings.ReplaceAll(name, "-", "_")
	if k.builtin[norm] {
		return stateFound, "built in"
	}
	if k.modules[norm] {
		return stateFound, "module"
	}
	if k.builtin != nil || k.modules != nil {
		return stateMissing, fmt.Sprintf("not in /lib/modules/%s", k.release)
	}
	return stateUnknown, "no kernel config nor /lib/modules to look in"
}

// filesystems returns /proc/filesystems, or nil and the error.
func (k *kernelProbe) filesystems() (map[string]bool, error) {
	fss, err := k.env.Filesystems()
	if err != nil {
		return nil, fmt.Errorf("cannot read /proc/filesystems: %w", err)
	}
	return fss, nil
}

// cgroupVersion reports v2 when /sys/fs/cgroup is the unified hierarchy.
func (k *kernelProbe) cgroupVersion() string {
	if k.env.Stat("/sys/fs/cgroup/cgroup.controllers") == nil {
		return "v2 (unified)"
	}
	return "v1"
}

// cgroupControllers returns the enabled controllers of /proc/cgroups.
func (k *kernelProbe) cgroupControllers() (map[string]bool, error) {
	data, err := k.env.ReadFile("/proc/cgroups")
	if errors.Is(err, fs.ErrNotExist) {
		// Kernels that dropped /proc/cgroups (cgroup v2 only).
		data, err = k.env.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, c := range strings.Fields(string(data)) {
			out[c] = true
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[3] == "1" {
			out[f[0]] = true
		}
	}
	return out, nil
}
