package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// File modes used for everything this package writes. Certificates are
// public, yet 0600 as CIS 1.1.20 asks (only iks, as root, reads them;
// clients get the CA from the kubeconfig or the join).
const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o600
)

// tightenFiles sets mode 0600 on every regular file directly in dir that
// group or others may read or write.
func tightenFiles(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read PKI directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", filepath.Join(dir, e.Name()), err)
		}
		if info.Mode().Perm()&0o077 == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		log.Info("tightening PKI file permissions", "file", path, "from", info.Mode().Perm().String(), "to", keyMode.String())
		if err := os.Chmod(path, keyMode); err != nil {
			return fmt.Errorf("set mode %v on %s: %w", keyMode, path, err)
		}
	}
	return nil
}

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
