package embedded

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// ManifestFile is the name of the asset manifest inside the assets directory.
const ManifestFile = "manifest.json"

// Asset kinds.
const (
	KindBinary = "binary" // a static executable, staged into the bin directory
	KindImage  = "image"  // an OCI image archive, imported into containerd
)

// Asset is one entry of manifest.json, written by scripts/build-assets.sh.
type Asset struct {
	// Name is the manifest key: the staged file name of a binary ("runc")
	// or the archive name of an image ("pause.tar").
	Name string `json:"-"`
	// Kind is KindBinary or KindImage.
	Kind string `json:"kind"`
	// File is the zstd-compressed file in the assets directory.
	File string `json:"file"`
	// Version is the upstream version the asset was built from.
	Version string `json:"version"`
	// Image is the full image name of a KindImage asset, e.g. "iks.local/pause:1".
	Image string `json:"image,omitempty"`
	// SHA256 is the hex digest of the uncompressed asset.
	SHA256 string `json:"sha256"`
	// Size and CompressedSize are in bytes.
	Size           int64 `json:"size"`
	CompressedSize int64 `json:"compressed_size"`
}

// parseManifest decodes and validates manifest.json. The names become file
// names in the bin directory, so they must be plain base names.
func parseManifest(data []byte) (map[string]Asset, error) {
	var raw map[string]Asset
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w: rebuild the assets with `make`", ManifestFile, err)
	}
	out := make(map[string]Asset, len(raw))
	for name, a := range raw {
		a.Name = name
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("%s: %w: rebuild the assets with `make`", ManifestFile, err)
		}
		out[name] = a
	}
	return out, nil
}

func (a Asset) validate() error {
	if !isBaseName(a.Name) {
		return fmt.Errorf("asset name %q is not a plain file name", a.Name)
	}
	if !isBaseName(a.File) {
		return fmt.Errorf("asset %q: file %q is not a plain file name", a.Name, a.File)
	}
	if a.Kind != KindBinary && a.Kind != KindImage {
		return fmt.Errorf("asset %q: kind %q is neither %q nor %q", a.Name, a.Kind, KindBinary, KindImage)
	}
	if a.Kind == KindImage && a.Image == "" {
		return fmt.Errorf("asset %q: image asset without an image name", a.Name)
	}
	if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("asset %q: sha256 %q is not 64 hex digits", a.Name, a.SHA256)
	}
	if a.Size < 0 {
		return fmt.Errorf("asset %q: negative size %d", a.Name, a.Size)
	}
	return nil
}

func isBaseName(s string) bool {
	return s != "" && s != "." && s != ".." && path.Base(s) == s && fs.ValidPath(s)
}

// names returns the asset names of the given kind, sorted.
func names(assets map[string]Asset, kind string) []string {
	var out []string
	for name, a := range assets {
		if a.Kind == kind {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ErrMissing is matched (errors.Is) by the error returned when the binary
// lacks an asset, i.e. it was built with a plain `go build` instead of `make`.
var ErrMissing = errors.New("embedded asset missing")

func missingError(asset string) error {
	return fmt.Errorf("%w: %q is not in this iks binary: build iks with `make` (a plain `go build` does not build the assets)", ErrMissing, asset)
}
