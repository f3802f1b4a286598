// Package ociimage writes single-layer linux/amd64 container images, made
// from in-memory files, as OCI image-layout tar archives.
//
// iks runs air-gapped: the images it needs (pause, test servers, its own
// add-ons) are built from this repository and imported into containerd from
// such archives instead of being pulled. The archive carries the image's full
// name in the index annotations, so that both `ctr images import` and
// containerd's client.Import register it under that name.
//
// Output is deterministic: every timestamp is fixed and every list is sorted,
// so the same Image always yields the same bytes and the same digests.
package ociimage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// defaultPath is put into Env when the image sets no PATH itself, as
// container builders do.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image describes a single-layer linux/amd64 image.
type Image struct {
	// Name is the image reference, e.g. "iks.local/pause:1". It is
	// normalized the way containerd's CRI plugin does ("pause" becomes
	// "docker.io/library/pause:latest"); a digest reference is rejected.
	Name string
	// Files are the contents of the only layer.
	Files []File
	// Entrypoint, Cmd, Env and WorkingDir go into the image config as is;
	// Env gets a default PATH unless it sets one.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// ExposedPorts lists "PORT" or "PORT/PROTO" (tcp, udp, sctp); a bare
	// port means tcp.
	ExposedPorts []string
}

// File is one entry of the image's filesystem.
type File struct {
	// Path is the absolute or relative path inside the image, e.g. "/pause".
	Path string
	// Mode holds the permission bits and optionally fs.ModeDir (an empty
	// directory) or fs.ModeSymlink (Data is then the link target). Zero
	// means a regular file with mode 0644.
	Mode fs.FileMode
	// Data is the file content.
	Data []byte
}

// ref is a parsed, normalized image name.
type ref struct {
	full string // e.g. "iks.local/pause:1"
	tag  string // e.g. "1"
}

func parseName(name string) (ref, error) {
	if name == "" {
		return ref{}, errors.New("image name is empty: set Image.Name, e.g. \"iks.local/pause:1\"")
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ref{}, fmt.Errorf("image name %q is not a valid reference (want e.g. \"iks.local/pause:1\"): %w", name, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return ref{}, fmt.Errorf("image name %q contains a digest: give a tag instead, e.g. \"iks.local/pause:1\"", name)
	}
	tagged, ok := reference.TagNameOnly(named).(reference.NamedTagged)
	if !ok {
		return ref{}, fmt.Errorf("image name %q: cannot derive a tag from it", name)
	}
	return ref{full: tagged.String(), tag: tagged.Tag()}, nil
}

// cleanPath turns a File.Path into a tar entry name without leading slash.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("file path is empty: give each File a path such as \"/bin/app\"")
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("file path %q contains \"..\": use a path inside the image", p)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("file path %q names the root directory: name a file below it", p)
	}
	return c, nil
}

// exposedPorts normalizes "8080" to "8080/tcp" and validates each entry.
func exposedPorts(ports []string) (map[string]struct{}, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	out := make(map[string]struct{}, len(ports))
	for _, p := range ports {
		num, proto, found := strings.Cut(p, "/")
		if !found {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("exposed port %q: protocol %q is not tcp, udp or sctp", p, proto)
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("exposed port %q: want a port number 1-65535, optionally with /tcp, /udp or /sctp", p)
		}
		out[strconv.FormatUint(n, 10)+"/"+proto] = struct{}{}
	}
	return out, nil
}

// envWithPath returns env with the default PATH prepended unless it sets one.
func envWithPath(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{defaultPath}, env...)
}
