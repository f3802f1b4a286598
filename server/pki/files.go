package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// File modes used for everything this package writes.
const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// ensureDir creates dir (and its parents) with mode 0700, and tightens an
// existing dir that is readable by group or others.
func ensureDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create PKI directory %s: %w (check that the data dir is writable)", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat PKI directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("PKI path %s exists but is not a directory: move it away or choose another data dir", dir)
	}
	if info.Mode().Perm() != dirMode {
		log.Info("tightening PKI directory permissions", "dir", dir, "from", info.Mode().Perm().String(), "to", dirMode.String())
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("set mode %v on PKI directory %s: %w", dirMode, dir, err)
		}
	}
	return nil
}

// readOptional reads path; a missing file yields (nil, false, nil).
func readOptional(path string) ([]byte, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return data, true, nil
}
