package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const cgroupMount = "/sys/fs/cgroup"

// ensureCgroupRoot creates the cgroup kubelet places pods under when it is
// not "/" (kubelet requires it to exist): in the unified hierarchy on
// cgroup v2, in every v1 hierarchy otherwise, with cpuset copied from the
// parent so tasks can join.
func ensureCgroupRoot(root string) error {
	if root == "" || root == "/" {
		return nil
	}
	rel := strings.TrimPrefix(filepath.Clean(root), "/")
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers")); err == nil {
		return mkdirCgroup(filepath.Join(cgroupMount, rel))
	}
	entries, err := os.ReadDir(cgroupMount)
	if err != nil {
		return fmt.Errorf("read %s: %w", cgroupMount, err)
	}
	for _, e := range entries {
		h := filepath.Join(cgroupMount, e.Name())
		if fi, err := os.Lstat(h); err != nil || !fi.IsDir() {
			continue // symlinks such as cpu -> cpu,cpuacct
		}
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		if err := mkdirCgroup(filepath.Join(h, rel)); err != nil {
			return err
		}
		if strings.Contains(e.Name(), "cpuset") {
			if err := inheritCpuset(h, rel); err != nil {
				return err
			}
		}
	}
	return nil
}

func mkdirCgroup(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w (check --cgroup-root)", dir, err)
	}
	return nil
}

// inheritCpuset fills empty cpuset.cpus/mems down the new path from the
// parent, as cgroup v1 requires before a task can join.
func inheritCpuset(hier, rel string) error {
	parent := hier
	for _, part := range strings.Split(rel, "/") {
		dir := filepath.Join(parent, part)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, _ := os.ReadFile(filepath.Join(dir, f))
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			v, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				return fmt.Errorf("read %s: %w", filepath.Join(parent, f), err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", filepath.Join(dir, f), err)
			}
		}
		parent = dir
	}
	return nil
}
