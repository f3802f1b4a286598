package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeELF writes a minimal x86-64 ELF executable header, with a PT_INTERP
// program header when dynamic is set: enough for mkimage's linkage check.
func fakeELF(t *testing.T, dynamic bool) string {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	phoff, phnum := uint64(0), uint16(0)
	if dynamic {
		phoff, phnum = 64, 1
	}
	le := binary.LittleEndian
	for _, v := range []any{
		uint16(elf.ET_EXEC), uint16(elf.EM_X86_64), uint32(1), uint64(0), // type, machine, version, entry
		phoff, uint64(0), uint32(0), // phoff, shoff, flags
		uint16(64), uint16(56), phnum, uint16(64), uint16(0), uint16(0), // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
	} {
		_ = binary.Write(&b, le, v)
	}
	if dynamic {
		_ = binary.Write(&b, le, elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 120, Filesz: 1, Memsz: 1})
		b.WriteByte(0)
	}
	p := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunPacksBinary(t *testing.T) {
	bin := fakeELF(t, false)
	out := filepath.Join(t.TempDir(), "img.tar")
	err := run([]string{"-name", "iks.local/test:1", "-bin", bin, "-entrypoint", "/app", "-port", "8080", "-env", "A=b", "-o", out, "--", "serve", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != "iks.local/test:1" {
		t.Errorf("image name annotation %q", got)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(files["blobs/sha256/"+index.Manifests[0].Digest.Encoded()], &manifest); err != nil {
		t.Fatal(err)
	}
	var config ocispec.Image
	if err := json.Unmarshal(files["blobs/sha256/"+manifest.Config.Digest.Encoded()], &config); err != nil {
		t.Fatal(err)
	}
	c := config.Config
	if strings.Join(c.Entrypoint, " ") != "/app" || strings.Join(c.Cmd, " ") != "serve -x" || c.Env[len(c.Env)-1] != "A=b" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "o.tar")
	cases := []struct {
		name, want string
		args       []string
	}{
		{"missing flags", "required", []string{"-name", "iks.local/x:1"}},
		{"relative entrypoint", "not absolute", []string{"-name", "iks.local/x:1", "-bin", fakeELF(t, false), "-entrypoint", "app", "-o", out}},
		{"not ELF", "not a readable ELF", []string{"-name", "iks.local/x:1", "-bin", notELF, "-o", out}},
		{"dynamic binary", "dynamically linked", []string{"-name", "iks.local/x:1", "-bin", fakeELF(t, true), "-o", out}},
		{"bad name", "not a valid reference", []string{"-name", "iks.local/X:1", "-bin", fakeELF(t, false), "-o", out}},
	}
	for _, c := range cases {
		if err := run(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: run(%v) error = %v, want one containing %q", c.name, c.args, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an archive was written despite errors (stat err %v)", err)
	}
}
