package embedded

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"

	"github.com/iks-dev/iks/tests/testutil"
)

// testAsset is an uncompressed asset for a synthetic assets directory.
type testAsset struct {
	kind, image string
	data        []byte
}

// newTestStore builds an assets directory like build-assets.sh writes.
func newTestStore(t *testing.T, assets map[string]testAsset) (*store, fstest.MapFS) {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = enc.Close() }()
	fsys := fstest.MapFS{}
	manifest := map[string]Asset{}
	for name, a := range assets {
		sum := sha256.Sum256(a.data)
		compressed := enc.EncodeAll(a.data, nil)
		fsys[name+".zst"] = &fstest.MapFile{Data: compressed, Mode: 0o644}
		manifest[name] = Asset{
			Kind: a.kind, File: name + ".zst", Version: "v1", Image: a.image,
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(a.data)), CompressedSize: int64(len(compressed)),
		}
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	fsys[ManifestFile] = &fstest.MapFile{Data: m, Mode: 0o644}
	return &store{fsys: fsys}, fsys
}

func defaultTestAssets() map[string]testAsset {
	return map[string]testAsset{
		"runc":      {kind: KindBinary, data: bytes.Repeat([]byte("runc binary "), 5000)},
		"portmap":   {kind: KindBinary, data: []byte("#!/bin/sh\necho portmap\n")},
		"pause.tar": {kind: KindImage, image: "iks.local/pause:1", data: []byte("not really a tar")},
	}
}

func TestStageWritesVerifiedBinaries(t *testing.T) {
	s, _ := newTestStore(t, defaultTestAssets())
	binDir := filepath.Join(t.TempDir(), "bin")
	paths, err := s.stage(binDir)
	if err != nil {
		t.Fatalf("stage: %v", err)
	}
	want := map[string]string{"runc": filepath.Join(binDir, "runc"), "portmap": filepath.Join(binDir, "portmap")}
	if len(paths) != len(want) {
		t.Fatalf("stage returned %v, want %v (images are not staged)", paths, want)
	}
	for name, p := range want {
		if paths[name] != p {
			t.Errorf("path of %s = %q, want %q", name, paths[name], p)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, defaultTestAssets()[name].data) {
			t.Errorf("%s: staged content differs from the asset", name)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", name, fi.Mode().Perm())
		}
	}
	assertNoTempFiles(t, binDir)
}

func TestStageSkipsUnchangedFiles(t *testing.T) {
	s, _ := newTestStore(t, defaultTestAssets())
	binDir := t.TempDir()
	if _, err := s.stage(binDir); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(filepath.Join(binDir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stage(binDir); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(filepath.Join(binDir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	// A rewrite renames a new file into place, which changes the inode.
	if !os.SameFile(before, after) {
		t.Error("an unchanged binary was rewritten")
	}
}

func TestStageRepairsCorruptedFile(t *testing.T) {
	s, _ := newTestStore(t, defaultTestAssets())
	binDir := t.TempDir()
	runc := filepath.Join(binDir, "runc")
	want := defaultTestAssets()["runc"].data
	// Same size, different content: only the hash can tell.
	corrupt := bytes.ToUpper(want)
	if err := os.WriteFile(runc, corrupt, 0o755); err != nil {
		t.Fatal(err)
	}
	// Right content, wrong mode: fixed in place.
	portmap := filepath.Join(binDir, "portmap")
	if err := os.WriteFile(portmap, defaultTestAssets()["portmap"].data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.stage(binDir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(runc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("corrupted binary was not rewritten")
	}
	fi, err := os.Stat(portmap)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("portmap mode %v, want 0755", fi.Mode().Perm())
	}
}

func TestStageRejectsAssetNotMatchingManifest(t *testing.T) {
	s, fsys := newTestStore(t, defaultTestAssets())
	// Swap runc's compressed data for another payload: hash mismatch.
	fsys["runc.zst"] = fsys["portmap.zst"]
	var m map[string]Asset
	if err := json.Unmarshal(fsys[ManifestFile].Data, &m); err != nil {
		t.Fatal(err)
	}
	m["runc"] = Asset{Kind: KindBinary, File: "runc.zst", SHA256: m["runc"].SHA256, Size: m["portmap"].Size}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fsys[ManifestFile] = &fstest.MapFile{Data: data}

	binDir := t.TempDir()
	_, err = s.stage(binDir)
	if err == nil || !strings.Contains(err.Error(), `"runc"`) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("stage error = %v, want a sha256 mismatch naming runc", err)
	}
	if _, err := os.Stat(filepath.Join(binDir, "runc")); !os.IsNotExist(err) {
		t.Errorf("a binary failing its hash check was left in place (stat err %v)", err)
	}
	assertNoTempFiles(t, binDir)
}

func TestStageRejectsOversizedStream(t *testing.T) {
	s, fsys := newTestStore(t, defaultTestAssets())
	var m map[string]Asset
	if err := json.Unmarshal(fsys[ManifestFile].Data, &m); err != nil {
		t.Fatal(err)
	}
	a := m["runc"]
	a.Size = 10
	m["runc"] = a
	data, _ := json.Marshal(m)
	fsys[ManifestFile] = &fstest.MapFile{Data: data}
	if _, err := s.stage(t.TempDir()); err == nil || !strings.Contains(err.Error(), "manifest says 10") {
		t.Fatalf("stage error = %v, want a size mismatch", err)
	}
}

func TestMissingAssetsSayBuildWithMake(t *testing.T) {
	empty := &store{fsys: fstest.MapFS{"README.md": {Data: []byte("x")}}}
	for what, call := range map[string]func() error{
		"stage":  func() error { _, err := empty.stage(t.TempDir()); return err },
		"image":  func() error { _, err := empty.image("pause.tar"); return err },
		"images": func() error { _, err := empty.images(); return err },
	} {
		err := call()
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "build iks with `make`") || !strings.Contains(err.Error(), ManifestFile) {
			t.Errorf("%s: error = %v, want ErrMissing naming %s and saying to build with make", what, err, ManifestFile)
		}
	}

	s, fsys := newTestStore(t, defaultTestAssets())
	s.required = []string{"runc", "crictl"}
	if _, err := s.stage(t.TempDir()); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), `"crictl"`) {
		t.Errorf("required asset missing from manifest: error = %v, want ErrMissing naming crictl", err)
	}
	s.required = nil
	delete(fsys, "runc.zst")
	if _, err := s.stage(t.TempDir()); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), `"runc"`) {
		t.Errorf("asset file missing: error = %v, want ErrMissing naming runc", err)
	}
}

func TestImage(t *testing.T) {
	s, _ := newTestStore(t, defaultTestAssets())
	want := defaultTestAssets()["pause.tar"].data
	for _, name := range []string{"pause.tar", "iks.local/pause:1"} {
		got, err := s.image(name)
		if err != nil {
			t.Fatalf("image(%q): %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("image(%q) content differs", name)
		}
	}
	if _, err := s.image("runc"); !errors.Is(err, ErrMissing) {
		t.Errorf("image(runc) error = %v, want ErrMissing (runc is not an image)", err)
	}
	all, err := s.images()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || !bytes.Equal(all["pause.tar"], want) {
		t.Errorf("images() = %d entries, want only pause.tar", len(all))
	}
}

func TestManifestRejectsUnsafeNames(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, name := range []string{"../runc", "a/b", ".", ""} {
		data, _ := json.Marshal(map[string]Asset{name: {Kind: KindBinary, File: "x.zst", SHA256: sum}})
		if _, err := parseManifest(data); err == nil {
			t.Errorf("asset name %q accepted", name)
		}
	}
	bad := map[string]Asset{
		"bad kind": {Kind: "tool", File: "x.zst", SHA256: sum},
		"bad hash": {Kind: KindBinary, File: "x.zst", SHA256: "abc"},
		"bad file": {Kind: KindBinary, File: "../x.zst", SHA256: sum},
		"no image": {Kind: KindImage, File: "x.zst", SHA256: sum},
	}
	for what, a := range bad {
		data, _ := json.Marshal(map[string]Asset{"x": a})
		if _, err := parseManifest(data); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
}

// TestEmbeddedAssets checks the real embedded assets: without `make` they
// are missing with a helpful error; with them, everything stages and the
// pause image decodes.
func TestEmbeddedAssets(t *testing.T) {
	m, err := Manifest()
	if errors.Is(err, ErrMissing) {
		if !strings.Contains(err.Error(), "build iks with `make`") {
			t.Errorf("missing-assets error does not say how to fix it: %v", err)
		}
		testutil.Unavailable(t, "no embedded assets (built without `make`): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded assets: %v", m)
	paths, err := Stage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Runc, Crictl, Portmap, Shim} {
		if paths[name] == "" {
			t.Errorf("Stage did not stage %s", name)
		}
	}
	pause, err := Image(PauseImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(pause) == 0 {
		t.Error("pause image is empty")
	}
	imgs := Images()
	for _, name := range []string{pauseArchive, CoreDNSArchive} {
		if len(imgs[name]) == 0 {
			t.Errorf("image %s missing from Images (have %d images)", name, len(imgs))
		}
	}
	if name, err := ImageName(CoreDNSArchive); err != nil || !strings.HasPrefix(name, "iks.local/coredns:") {
		t.Errorf("ImageName(%s) = %q, %v; want iks.local/coredns:<version>", CoreDNSArchive, name, err)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}
