package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/iks-dev/iks/internal/fsutil"
)

// --with-node-id (as k3s's) appends "-<id>" to the node name, where id is
// random, made once and kept in the data dir, so that machines sharing a
// host name (cloned VMs) get distinct, stable node names.

// nodeIDPattern is the form of a node id: 8 lower-case hex digits.
var nodeIDPattern = regexp.MustCompile(`^[0-9a-f]{8}$`)

// NodeIDFile is where --with-node-id keeps the node id.
func NodeIDFile(dataDir string) string { return filepath.Join(dataDir, "agent", "node-id") }

// nodeID returns the node id kept in dataDir, or a new one (fresh == true)
// that SaveNodeID must record before the name is used. It writes nothing.
func nodeID(dataDir string) (id string, fresh bool, err error) {
	path := NodeIDFile(dataDir)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id = strings.TrimSpace(string(data))
		if !nodeIDPattern.MatchString(id) {
			return "", false, fmt.Errorf("node id file %s holds %q, not 8 hex digits: restore it, or delete it to get a new "+
				"node name (then delete the old node on the server)", path, id)
		}
		return id, false, nil
	case errors.Is(err, fs.ErrNotExist):
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return "", false, fmt.Errorf("generate node id: %w", err)
		}
		return hex.EncodeToString(b), true, nil
	default:
		return "", false, fmt.Errorf("read node id %s: %w", path, err)
	}
}

// SaveNodeID records a node id made by Validate (Joining.NewNodeID), so
// that the node keeps its name on every start.
func SaveNodeID(dataDir, id string) error {
	if id == "" {
		return nil
	}
	path := NodeIDFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w (check that the data dir is writable)", filepath.Dir(path), err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("record node id: %w", err)
	}
	return nil
}
