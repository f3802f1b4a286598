// Command mkimage packs one static binary into a single-layer linux/amd64
// OCI image archive that containerd can import without a registry:
//
//	go run ./scripts/mkimage -name iks.local/httpd:1 -bin ./httpd [-entrypoint /httpd] [-file SRC:DEST]... -o httpd.tar [-- ARGS...]
//
// The binary is stored at the entrypoint path (default "/" plus its base
// name) and runs as the image's entrypoint; arguments after the flags become
// the image's Cmd. -file adds further files (e.g. a distribution's
// programs and the shared libraries they need, for the VPN gateway
// image) at DEST with SRC's permission bits; symlinks are followed. The
// output is deterministic.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/iks-dev/iks/internal/ociimage"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("mkimage failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fset := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		name       = fset.String("name", "", "image name, e.g. iks.local/httpd:1 (required)")
		bin        = fset.String("bin", "", "path of the static binary to pack (required)")
		entrypoint = fset.String("entrypoint", "", "path of the binary inside the image, run as entrypoint (default /BASENAME)")
		out        = fset.String("o", "", "output archive path (required)")
		workdir    = fset.String("workdir", "/", "working directory of the container")
		env, ports listFlag
		extra      listFlag
	)
	fset.Var(&env, "env", "KEY=VALUE environment entry (repeatable)")
	fset.Var(&ports, "port", "exposed port, e.g. 8080 or 53/udp (repeatable)")
	fset.Var(&extra, "file", "SRC:DEST, a further file of the image (repeatable)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *name == "" || *bin == "" || *out == "" {
		fset.Usage()
		return errors.New("-name, -bin and -o are required")
	}
	ep := *entrypoint
	if ep == "" {
		ep = "/" + filepath.Base(*bin)
	}
	if !path.IsAbs(ep) {
		return fmt.Errorf("-entrypoint %q is not absolute: give a path such as /%s", ep, strings.TrimLeft(ep, "./"))
	}
	if err := checkStatic(*bin); err != nil {
		return err
	}
	data, err := os.ReadFile(*bin)
	if err != nil {
		return fmt.Errorf("read -bin: %w", err)
	}
	files := []ociimage.File{{Path: ep, Mode: 0o755, Data: data}}
	for _, f := range extra {
		src, dest, ok := strings.Cut(f, ":")
		if !ok || src == "" || !path.IsAbs(dest) {
			return fmt.Errorf("-file %q: give SRC:DEST with an absolute DEST, e.g. /usr/sbin/charon:/usr/sbin/charon", f)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("-file %q: %w", f, err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("-file %q: %w", f, err)
		}
		files = append(files, ociimage.File{Path: dest, Mode: st.Mode().Perm(), Data: b})
	}
	img := ociimage.Image{
		Name:         *name,
		Files:        files,
		Entrypoint:   []string{ep},
		Cmd:          fset.Args(),
		Env:          env,
		WorkingDir:   *workdir,
		ExposedPorts: ports,
	}
	if err := ociimage.WriteFile(*out, img); err != nil {
		return err
	}
	slog.Info("image written", "name", *name, "path", *out, "binary", *bin, "entrypoint", ep)
	return nil
}

// checkStatic refuses dynamically linked ELF binaries: the image has no libc
// and no loader, so such a binary could not start in it.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("-bin %q is not a readable ELF binary: %w", p, err)
	}
	defer func() { _ = f.Close() }()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("-bin %q is built for %v: build it with GOARCH=amd64", p, f.Machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("-bin %q is dynamically linked: build it statically (CGO_ENABLED=0) so it runs in an image without libc", p)
		}
	}
	return nil
}
