package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// NetworkName is the name of the pod network in the generated conflist.
const NetworkName = "iks"

// ConflistConfig is what the agent knows when it writes the CNI network
// configuration list for containerd.
type ConflistConfig struct {
	// MTU of pod interfaces; 0 derives it from the host's default-route
	// interface. With IP-in-IP or VXLAN encapsulation the agent should pass
	// the uplink MTU minus the encapsulation overhead.
	MTU int
	// Blocks are the node's pod address blocks.
	Blocks []netip.Prefix
	// DataDir is the IPAM state directory; DefaultIPAMDataDir if empty.
	DataDir string
	// LogFile, if set, receives the plugin's log.
	LogFile string
}

type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type pluginEntry struct {
	Type    string   `json:"type"`
	MTU     int      `json:"mtu,omitempty"`
	IPAM    IPAMConf `json:"ipam"`
	LogFile string   `json:"logFile,omitempty"`
}

type portmapEntry struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

// RenderConflist returns the conflist for cfg: this plugin followed by
// portmap for hostPort support.
func RenderConflist(cfg ConflistConfig) ([]byte, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultIPAMDataDir
	}
	conf := NetConf{MTU: cfg.MTU, IPAM: IPAMConf{Blocks: cfg.Blocks, DataDir: cfg.DataDir}, LogFile: cfg.LogFile}
	if err := conf.validate(); err != nil {
		return nil, fmt.Errorf("CNI conflist: %w", err)
	}
	list := conflist{
		CNIVersion: "1.0.0",
		Name:       NetworkName,
		Plugins: []any{
			pluginEntry{Type: PluginType, MTU: cfg.MTU, IPAM: conf.IPAM, LogFile: cfg.LogFile},
			portmapEntry{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}, SNAT: true},
		},
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode CNI conflist: %w", err)
	}
	return append(data, '\n'), nil
}

// WriteConflist writes the conflist for cfg to path (mode 0644) atomically,
// creating the directory if needed. An existing file with the same content
// is left untouched, so containerd does not see a spurious change.
func WriteConflist(path string, cfg ConflistConfig) error {
	data, err := RenderConflist(cfg)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat CNI conflist %s: %w", path, err)
		}
		if fi.Mode().Perm() != 0o644 {
			if err := os.Chmod(path, 0o644); err != nil {
				return fmt.Errorf("chmod CNI conflist %s: %w", path, err)
			}
		}
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read CNI conflist %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create CNI config directory %s: %w", dir, err)
	}
	return writeFileAtomic(path, data, 0o644)
}

// writeFileAtomic writes data to a temporary file next to path, fsyncs it,
// renames it over path and fsyncs the directory. Readers see the old or the
// new content, never a partial file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	// containerd loads every *.conflist in the directory: the temporary
	// name must not end in .conf, .conflist or .json.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
