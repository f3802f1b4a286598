package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func testImage() Image {
	return Image{
		Name: "iks.local/httpd:1",
		Files: []File{
			{Path: "/bin/httpd", Mode: 0o755, Data: []byte("\x7fELF fake binary")},
			{Path: "etc/motd", Data: []byte("hello\n")},
			{Path: "/usr/bin/sh", Mode: fs.ModeSymlink | 0o777, Data: []byte("/bin/httpd")},
			{Path: "/var/empty", Mode: fs.ModeDir | 0o700},
		},
		Entrypoint:   []string{"/bin/httpd"},
		Cmd:          []string{"-v"},
		Env:          []string{"PORT=8080"},
		WorkingDir:   "/",
		ExposedPorts: []string{"8080", "53/UDP"},
	}
}

// archive is a parsed OCI image-layout tar.
type archive struct {
	files map[string][]byte
	dirs  []string
}

func readArchive(t *testing.T, data []byte) archive {
	t.Helper()
	a := archive{files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("archive does not parse as tar: %v", err)
		}
		if hdr.Typeflag == tar.TypeDir {
			a.dirs = append(a.dirs, hdr.Name)
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			t.Fatalf("unexpected archive entry type %c for %s", hdr.Typeflag, hdr.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.files[hdr.Name] = b
	}
	return a
}

func (a archive) blob(t *testing.T, d ocispec.Descriptor) []byte {
	t.Helper()
	b, ok := a.files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing from archive", d.Digest)
	}
	if int64(len(b)) != d.Size {
		t.Fatalf("blob %s has %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		t.Fatalf("blob %s has digest %s", d.Digest, got)
	}
	return b
}

func writeArchive(t *testing.T, img Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestWriteProducesValidLayout(t *testing.T) {
	a := readArchive(t, writeArchive(t, testImage()))

	var layout ocispec.ImageLayout
	mustUnmarshal(t, a.files["oci-layout"], &layout)
	if layout.Version != "1.0.0" {
		t.Errorf("oci-layout version %q", layout.Version)
	}
	var index ocispec.Index
	mustUnmarshal(t, a.files["index.json"], &index)
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %+v, want one manifest in a schema 2 OCI index", index)
	}
	md := index.Manifests[0]
	wantAnn := map[string]string{AnnotationImageName: "iks.local/httpd:1", ocispec.AnnotationRefName: "1"}
	if !reflect.DeepEqual(md.Annotations, wantAnn) {
		t.Errorf("manifest annotations %v, want %v", md.Annotations, wantAnn)
	}
	if md.MediaType != ocispec.MediaTypeImageManifest || md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != "amd64" {
		t.Errorf("manifest descriptor %+v, want an OCI manifest for linux/amd64", md)
	}

	var manifest ocispec.Manifest
	mustUnmarshal(t, a.blob(t, md), &manifest)
	if manifest.Config.MediaType != ocispec.MediaTypeImageConfig || len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("manifest %+v, want an OCI config and one gzip layer", manifest)
	}
	var config ocispec.Image
	mustUnmarshal(t, a.blob(t, manifest.Config), &config)
	layerGz := a.blob(t, manifest.Layers[0])

	zr, err := gzip.NewReader(bytes.NewReader(layerGz))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	layerTar, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layerTar)
	wantDiffID := digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
	if !reflect.DeepEqual(config.RootFS, ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{wantDiffID}}) {
		t.Errorf("rootfs %+v, want diff_id %s", config.RootFS, wantDiffID)
	}
	if config.OS != "linux" || config.Architecture != "amd64" {
		t.Errorf("config platform %s/%s", config.OS, config.Architecture)
	}
	c := config.Config
	if !reflect.DeepEqual(c.Entrypoint, []string{"/bin/httpd"}) || !reflect.DeepEqual(c.Cmd, []string{"-v"}) || c.WorkingDir != "/" {
		t.Errorf("config entrypoint %v cmd %v workdir %q", c.Entrypoint, c.Cmd, c.WorkingDir)
	}
	if !reflect.DeepEqual(c.Env, []string{defaultPath, "PORT=8080"}) {
		t.Errorf("env %v, want default PATH then PORT", c.Env)
	}
	if !reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"8080/tcp": {}, "53/udp": {}}) {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if len(a.files) != 5 {
		t.Errorf("archive has files %v, want oci-layout, index.json and three blobs", keys(a.files))
	}
}

func TestLayerContents(t *testing.T) {
	lay, err := buildLayer(testImage().Files)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(lay.blob))
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		typ  byte
		mode int64
		body string
	}
	got := map[string]ent{}
	var order []string
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if hdr.Typeflag == tar.TypeSymlink {
			body = []byte(hdr.Linkname)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d gid %d mtime %v, want root and the fixed epoch", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		got[hdr.Name] = ent{hdr.Typeflag, hdr.Mode, string(body)}
		order = append(order, hdr.Name)
	}
	want := map[string]ent{
		"bin/":       {tar.TypeDir, 0o755, ""},
		"bin/httpd":  {tar.TypeReg, 0o755, "\x7fELF fake binary"},
		"dev/":       {tar.TypeDir, 0o755, ""},
		"etc/":       {tar.TypeDir, 0o755, ""},
		"etc/motd":   {tar.TypeReg, 0o644, "hello\n"},
		"proc/":      {tar.TypeDir, 0o555, ""},
		"sys/":       {tar.TypeDir, 0o555, ""},
		"tmp/":       {tar.TypeDir, 0o1777, ""},
		"usr/":       {tar.TypeDir, 0o755, ""},
		"usr/bin/":   {tar.TypeDir, 0o755, ""},
		"usr/bin/sh": {tar.TypeSymlink, 0o777, "/bin/httpd"},
		"var/":       {tar.TypeDir, 0o755, ""},
		"var/empty/": {tar.TypeDir, 0o700, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries\n got %v\nwant %v", got, want)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("layer entries not sorted: %q before %q", order[i-1], order[i])
		}
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	first := writeArchive(t, testImage())
	img := testImage()
	// Input order must not matter either.
	img.Files[0], img.Files[3] = img.Files[3], img.Files[0]
	if second := writeArchive(t, img); !bytes.Equal(first, second) {
		t.Fatal("the same image gave different archives")
	}
	img.Files[1].Data = []byte("changed\n")
	if third := writeArchive(t, img); bytes.Equal(first, third) {
		t.Fatal("a changed file gave the same archive")
	}
}

func TestNameNormalization(t *testing.T) {
	for in, want := range map[string]ref{
		"iks.local/pause:1":       {full: "iks.local/pause:1", tag: "1"},
		"iks.local/pause":         {full: "iks.local/pause:latest", tag: "latest"},
		"pause:3.10":              {full: "docker.io/library/pause:3.10", tag: "3.10"},
		"localhost:5000/a/b:v1.2": {full: "localhost:5000/a/b:v1.2", tag: "v1.2"},
	} {
		got, err := parseName(in)
		if err != nil || got != want {
			t.Errorf("parseName(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "iks.local/Pause:1", "iks.local/pause@sha256:" + strings.Repeat("a", 64), "a b"} {
		if _, err := parseName(bad); err == nil {
			t.Errorf("parseName(%q) accepted", bad)
		}
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	cases := map[string]func(*Image){
		"dot-dot path":     func(i *Image) { i.Files = append(i.Files, File{Path: "/../etc/x"}) },
		"root path":        func(i *Image) { i.Files = append(i.Files, File{Path: "/"}) },
		"duplicate path":   func(i *Image) { i.Files = append(i.Files, File{Path: "bin/httpd"}) },
		"file over a base": func(i *Image) { i.Files = append(i.Files, File{Path: "/tmp", Data: []byte("x")}) },
		"file as parent":   func(i *Image) { i.Files = append(i.Files, File{Path: "/etc/motd/x"}) },
		"device":           func(i *Image) { i.Files = append(i.Files, File{Path: "/dev/null", Mode: fs.ModeDevice | 0o666}) },
		"bad port":         func(i *Image) { i.ExposedPorts = []string{"http"} },
		"bad protocol":     func(i *Image) { i.ExposedPorts = []string{"80/icmp"} },
		"no name":          func(i *Image) { i.Name = "" },
	}
	for name, mutate := range cases {
		img := testImage()
		mutate(&img)
		if err := Write(io.Discard, img); err == nil {
			t.Errorf("%s: Write accepted it", name)
		}
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteFile(p, testImage()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, writeArchive(t, testImage())) {
		t.Error("WriteFile content differs from Write")
	}
	bad := testImage()
	bad.Name = ""
	if err := WriteFile(filepath.Join(filepath.Dir(p), "bad.tar"), bad); err == nil {
		t.Error("WriteFile accepted an invalid image")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only img.tar (no temporary files)", len(entries))
	}
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
