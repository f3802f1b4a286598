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

	"github.com/iks-dev/iks/internal/fsutil"
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
	// Blocks are fixed pod address blocks; empty when the agent's block
	// set is used (AgentSocket).
	Blocks []netip.Prefix
	// AgentSocket is the agent's socket for more blocks.
	AgentSocket string
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
	conf := NetConf{MTU: cfg.MTU, IPAM: IPAMConf{Blocks: cfg.Blocks, DataDir: cfg.DataDir, AgentSocket: cfg.AgentSocket}, LogFile: cfg.LogFile}
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

// WriteConflist writes the conflist for cfg to path (mode 0600, as CIS
// 1.1.9 asks; only containerd reads it) atomically,
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
		if fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(path, 0o600); err != nil {
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
	return fsutil.WriteFileAtomic(path, data, 0o600)
}
