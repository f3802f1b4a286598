// Package ipam is the node-local pod address allocator of the iks CNI plugin.
//
// A node owns one or more IPv4 blocks of the cluster pod range (for example
// 172.30.5.0/24, later further /26 blocks). Store hands out single addresses
// from those blocks to pods, keyed by a handle (the container ID and interface
// name), and remembers them in a small JSON file.
//
// The store is shared by CNI plugin processes that containerd runs in
// parallel, so every operation takes an exclusive flock on a lock file in the
// store directory, reads the state file, and writes it back crash-safely
// (temporary file, fsync, rename, fsync of the directory). A state file that
// cannot be parsed is reported as an error naming the file; it is never
// silently reset, because that would hand out addresses that running pods
// still use.
//
// In every block the first address is reserved for the node itself (its
// tunnel or gateway address) and the last one is never handed out either;
// all addresses in between are usable, because pods get /32 addresses routed
// to their veth and there is no network or broadcast address to protect.
package ipam

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/iks-dev/iks/internal/fsutil"
)

const (
	// StateFileName is the name of the allocation state file in the store directory.
	StateFileName = "allocations.json"
	// LockFileName is the name of the lock file in the store directory.
	LockFileName = "lock"
)

// Store is a file-backed, cross-process safe allocator rooted in one
// directory. A Store holds no open files between calls; it is safe for
// concurrent use by goroutines and by several processes opening the same
// directory.
type Store struct {
	dir string
}

// Open returns the store rooted in dir, creating dir with mode 0700 if it does
// not exist. It checks that the state file, if present, is readable and valid.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("ipam: data directory is empty; configure an absolute path such as /var/lib/iks/agent/ipam")
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("ipam: data directory %q is relative; configure an absolute path such as /var/lib/iks/agent/ipam", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: create data directory %s: %w", dir, err)
	}
	s := &Store{dir: filepath.Clean(dir)}
	if err := s.view(func(*state) error { return nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) statePath() string { return filepath.Join(s.dir, StateFileName) }

// lock takes an exclusive flock on the store's lock file and returns the
// function that releases it. Each call opens its own file description, so
// goroutines of one process exclude each other as processes do.
func (s *Store) lock() (func(), error) {
	path := filepath.Join(s.dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipam: open lock file %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ipam: lock %s: %w", path, err)
	}
	// Closing the file releases the flock.
	return func() { _ = f.Close() }, nil
}

// view runs fn on the current state under the lock, without writing.
func (s *Store) view(fn func(*state) error) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.load()
	if err != nil {
		return err
	}
	return fn(st)
}

// update runs fn on the current state under the lock and writes the state
// back if fn reports a change.
func (s *Store) update(fn func(*state) (changed bool, err error)) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.load()
	if err != nil {
		return err
	}
	changed, err := fn(st)
	if err != nil || !changed {
		return err
	}
	return s.save(st)
}

// load reads the state file; a missing file is an empty state.
func (s *Store) load() (*state, error) {
	path := s.statePath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: read state file %s: %w", path, err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("ipam: state file %s is corrupt: %w; it was not reset because running pods may "+
			"still use its addresses: repair it, or move it aside only after removing every pod on this node", path, err)
	}
	return st, nil
}

// save writes the state crash-safely: a temporary file in the same directory
// is written and fsynced, renamed over the state file, and the directory is
// fsynced so that the rename itself survives a crash.
func (s *Store) save(st *state) error {
	data, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("ipam: encode state: %w", err)
	}
	return fsutil.WriteFileAtomic(s.statePath(), data, 0o600)
}
