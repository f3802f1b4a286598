package main

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

//go:embed payload
var payloadFS embed.FS

const (
	payloadName = "payload/iks.zst"
	versionName = "payload/iks.version"
)

// run finds or extracts the program and execs it; it returns only on error.
func run(args, env []string) error {
	version, err := payloadVersion()
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range candidateDirs(env) {
		path, err := ensureExtracted(dir, version)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return fmt.Errorf("run %s: %w", path, syscall.Exec(path, args, env))
	}
	// Nothing writable: run from an in-memory file.
	fd, err := memfdProgram()
	if err != nil {
		return fmt.Errorf("cannot extract the iks program (%w), nor into memory: %w", errors.Join(errs...), err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	return fmt.Errorf("run %s: %w", path, syscall.Exec(path, args, env))
}

// payloadVersion names the carried program: the hash make recorded in
// payload/iks.version, or one computed here.
func payloadVersion() (string, error) {
	if v, err := payloadFS.ReadFile(versionName); err == nil {
		if v := strings.TrimSpace(string(v)); len(v) == 16 && isHex(v) {
			return v, nil
		}
	}
	f, err := payloadFS.Open(payloadName)
	if err != nil {
		return "", fmt.Errorf("this iks binary carries no program (%s): build it with `make`, not `go build ./cmd/iks-launcher`", payloadName)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// candidateDirs are the extraction roots in order: $IKS_PROGRAM_DIR,
// else lib/iks beside the launcher's bin dir (/usr/local/bin/iks:
// /usr/local/lib/iks), then, for a user without root, their cache dir.
func candidateDirs(env []string) []string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IKS_PROGRAM_DIR="); ok && v != "" {
			return []string{v}
		}
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if exe, err := filepath.EvalSymlinks(exe); err == nil {
			dirs = append(dirs, filepath.Join(filepath.Dir(filepath.Dir(exe)), "lib", "iks"))
		}
	}
	if c, err := os.UserCacheDir(); err == nil && os.Geteuid() != 0 {
		dirs = append(dirs, filepath.Join(c, "iks"))
	}
	return dirs
}

// ensureExtracted returns root/<version>/iks, writing it first when it is
// missing: into a temporary file in root, synced, then renamed into place,
// so a crash or a concurrent first run never leaves a partial program.
// Other versions' directories are removed once this one is in place.
func ensureExtracted(root, version string) (string, error) {
	dir := filepath.Join(root, version)
	path := filepath.Join(dir, "iks")
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(root, ".iks-"+version+"-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := decompress(tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("extract the iks program to %s: %w", path, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	removeOtherVersions(root, version)
	return path, nil
}

// removeOtherVersions deletes the extracted programs of other versions
// (best effort; a running one keeps its mapped file until it exits).
func removeOtherVersions(root, version string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != version && len(e.Name()) == len(version) && isHex(e.Name()) {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// decompress writes the program to w, streaming from the embedded data.
func decompress(w io.Writer) error {
	f, err := payloadFS.Open(payloadName)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = io.Copy(w, d)
	return err
}

// memfdProgram writes the program into an in-memory file and returns its
// descriptor (left open across exec).
func memfdProgram() (int, error) {
	fd, err := unix.MemfdCreate("iks", 0)
	if err != nil {
		return -1, err
	}
	memfd = os.NewFile(uintptr(fd), "iks") // kept: its finalizer would close fd
	if err := decompress(memfd); err != nil {
		return -1, err
	}
	return fd, nil
}

var memfd *os.File
