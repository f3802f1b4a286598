package embedded

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// store reads assets from a file system laid out like embedded/assets. The
// package functions use the embedded one; tests inject their own.
type store struct {
	fsys fs.FS
	// required lists assets that must be present; a missing one means the
	// binary was not built with `make`.
	required []string
}

// manifest reads and validates the manifest and checks the required assets.
func (s *store) manifest() (map[string]Asset, error) {
	data, err := fs.ReadFile(s.fsys, ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missingError(ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", ManifestFile, err)
	}
	assets, err := parseManifest(data)
	if err != nil {
		return nil, err
	}
	for _, name := range s.required {
		if _, ok := assets[name]; !ok {
			return nil, missingError(name)
		}
	}
	return assets, nil
}

// open returns a decompressing reader of the asset that yields at most
// a.Size+1 bytes, so that an oversized stream is detected, not trusted.
func (s *store) open(a Asset) (io.Reader, func(), error) {
	f, err := s.fsys.Open(a.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, missingError(a.Name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open embedded asset %q (%s): %w", a.Name, a.File, err)
	}
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("start decompressing embedded asset %q (%s): %w", a.Name, a.File, err)
	}
	closeFn := func() { dec.Close(); _ = f.Close() }
	return io.LimitReader(dec, a.Size+1), closeFn, nil
}

// copyVerified decompresses asset a into w and checks its size and hash.
func (s *store) copyVerified(w io.Writer, a Asset) error {
	r, closeFn, err := s.open(a)
	if err != nil {
		return err
	}
	defer closeFn()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return fmt.Errorf("decompress embedded asset %q (%s): %w", a.Name, a.File, err)
	}
	if n != a.Size {
		return fmt.Errorf("embedded asset %q decompresses to %d bytes, manifest says %d: the assets are inconsistent, rebuild iks with `make`", a.Name, n, a.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return fmt.Errorf("embedded asset %q has sha256 %s, manifest says %s: the assets are inconsistent, rebuild iks with `make`", a.Name, got, a.SHA256)
	}
	return nil
}

// stage writes every binary asset into binDir; see Stage.
func (s *store) stage(binDir string) (map[string]string, error) {
	assets, err := s.manifest()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("create bin directory %q: %w", binDir, err)
	}
	// The binaries are checked and written side by side: decompressing,
	// hashing and syncing one is mostly one core or one disk wait, and a
	// first start waits for all of them.
	paths := make(map[string]string)
	var g errgroup.Group
	g.SetLimit(max(2, runtime.NumCPU()))
	for _, name := range names(assets, KindBinary) {
		a := assets[name]
		dest := filepath.Join(binDir, name)
		paths[name] = dest
		g.Go(func() error {
			current, err := fileMatches(dest, a)
			if err != nil {
				return err
			}
			if current {
				slog.Debug("embedded binary up to date", "component", "embedded", "name", name, "path", dest)
				return nil
			}
			if err := s.writeBinary(dest, a); err != nil {
				return err
			}
			slog.Info("staged embedded binary", "component", "embedded", "name", name, "version", a.Version, "path", dest)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return paths, nil
}

// fileMatches reports whether path holds asset a with mode 0755. A file with
// the right content but another mode is fixed in place.
func fileMatches(path string, a Asset) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat staged binary %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != a.Size {
		return false, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return false, err
	}
	if sum != a.SHA256 {
		return false, nil
	}
	if fi.Mode().Perm() != 0o755 {
		if err := os.Chmod(path, 0o755); err != nil {
			return false, fmt.Errorf("make staged binary %q executable: %w", path, err)
		}
	}
	return true, nil
}

// writeBinary decompresses a into a temporary file next to dest, verifies
// what reached the disk and renames it over dest.
func (s *store) writeBinary(dest string, a Asset) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+a.Name+".*")
	if err != nil {
		return fmt.Errorf("create temporary file for %q: %w", dest, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := s.copyVerified(tmp, a); err != nil {
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		return fmt.Errorf("chmod %q: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %q: %w", tmp.Name(), err)
	}
	sum, err := fileSHA256(tmp.Name())
	if err != nil {
		return err
	}
	if sum != a.SHA256 {
		return fmt.Errorf("staged %q has sha256 %s after writing, want %s: check the disk holding %q", a.Name, sum, a.SHA256, filepath.Dir(dest))
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("move staged binary into place at %q: %w", dest, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %q to check its hash: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %q to check its hash: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// image returns the decompressed archive of the image asset named either by
// its asset name ("pause.tar") or by its image name ("iks.local/pause:1").
func (s *store) image(name string) ([]byte, error) {
	assets, err := s.manifest()
	if err != nil {
		return nil, err
	}
	a, ok := assets[name]
	if !ok {
		for _, cand := range assets {
			if cand.Kind == KindImage && cand.Image == name {
				a, ok = cand, true
				break
			}
		}
	}
	if !ok || a.Kind != KindImage {
		return nil, fmt.Errorf("%w: image %q is not among the embedded images %v: use one of those names or build iks with `make`", ErrMissing, name, names(assets, KindImage))
	}
	return s.decode(a)
}

// imageName returns the image name recorded for an image asset.
func (s *store) imageName(archive string) (string, error) {
	assets, err := s.manifest()
	if err != nil {
		return "", err
	}
	a, ok := assets[archive]
	if !ok || a.Kind != KindImage || a.Image == "" {
		return "", fmt.Errorf("%w: image archive %q is not among the embedded images %v: build iks with `make`", ErrMissing, archive, names(assets, KindImage))
	}
	return a.Image, nil
}

// decode returns the verified, decompressed content of a.
func (s *store) decode(a Asset) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(a.Size))
	if err := s.copyVerified(&buf, a); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// images returns every readable image archive by asset name, and the
// joined errors of those that are not.
func (s *store) images() (map[string][]byte, error) {
	assets, err := s.manifest()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	var errs []error
	for _, name := range names(assets, KindImage) {
		data, err := s.decode(assets[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = data
	}
	return out, errors.Join(errs...)
}
