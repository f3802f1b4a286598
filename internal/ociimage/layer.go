package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
)

// epoch is the fixed timestamp of every tar entry and of the image config,
// which makes the output reproducible.
var epoch = time.Unix(0, 0).UTC()

// baseDirs are present in every image, so that a container runtime can mount
// over them and programs find a writable /tmp.
var baseDirs = map[string]fs.FileMode{
	"dev":  fs.ModeDir | 0o755,
	"etc":  fs.ModeDir | 0o755,
	"proc": fs.ModeDir | 0o555,
	"sys":  fs.ModeDir | 0o555,
	"tmp":  fs.ModeDir | fs.ModeSticky | 0o777,
}

// entry is one member of the layer tarball.
type entry struct {
	mode     fs.FileMode
	data     []byte
	explicit bool // given by the caller, not implied
}

// layer is a built layer: the gzip blob plus the digest of its tar (diff_id).
type layer struct {
	blob   []byte
	diffID digest.Digest
}

// buildLayer turns files into a gzip-compressed tarball.
func buildLayer(files []File) (layer, error) {
	entries, err := layerEntries(files)
	if err != nil {
		return layer{}, err
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	// A parent sorts before its children, as "a" < "a/..." for any suffix.
	sort.Strings(names)

	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, name := range names {
		if err := writeEntry(tw, name, entries[name]); err != nil {
			return layer{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return layer{}, fmt.Errorf("finish layer tar: %w", err)
	}

	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.BestCompression)
	if err != nil {
		return layer{}, fmt.Errorf("create gzip writer: %w", err)
	}
	// The gzip header keeps its zero ModTime and empty Name: deterministic.
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return layer{}, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("compress layer: %w", err)
	}
	sum := sha256.Sum256(tarBuf.Bytes())
	return layer{blob: gzBuf.Bytes(), diffID: digest.NewDigestFromBytes(digest.SHA256, sum[:])}, nil
}

// layerEntries validates files and adds their parent directories and the
// base directories.
func layerEntries(files []File) (map[string]entry, error) {
	entries := make(map[string]entry, len(files)+len(baseDirs))
	for name, mode := range baseDirs {
		entries[name] = entry{mode: mode}
	}
	for _, f := range files {
		name, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if !mode.IsRegular() && !mode.IsDir() && mode&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("file %q has mode %v: only regular files, directories and symlinks are supported", f.Path, mode)
		}
		if old, ok := entries[name]; ok && (old.explicit || !old.mode.IsDir() || !mode.IsDir()) {
			return nil, fmt.Errorf("file %q is given twice or clashes with a directory of the image: give each path once", f.Path)
		}
		entries[name] = entry{mode: mode, data: f.Data, explicit: true}
	}
	// Add missing parents and check that no parent is a file.
	for name := range entries {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			parent, ok := entries[dir]
			if !ok {
				entries[dir] = entry{mode: fs.ModeDir | 0o755}
				continue
			}
			if !parent.mode.IsDir() {
				return nil, fmt.Errorf("file %q needs %q to be a directory, but it is a file: rename one of them", name, dir)
			}
		}
	}
	return entries, nil
}

func writeEntry(tw *tar.Writer, name string, e entry) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    tarMode(e.mode),
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}
	switch {
	case e.mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case e.mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = string(e.data)
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = int64(len(e.data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write layer entry %q: %w", name, err)
	}
	if hdr.Typeflag == tar.TypeReg {
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("write layer entry %q: %w", name, err)
		}
	}
	return nil
}

// tarMode converts Go's file mode to the Unix bits a tar header carries.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
