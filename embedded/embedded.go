// Package embedded holds what the iks binary carries besides its own code:
// static runc, containerd, containerd-shim-runc-v2, the iks CNI plugin, crictl and portmap CNI plugin
// binaries and the pause and CoreDNS images, all built from source by
// scripts/build-assets.sh (run by `make`) and stored zstd-compressed with a
// manifest of their SHA-256 digests.
//
// Stage writes the binaries to <data-dir>/bin, rewriting only those whose
// content differs from the manifest; Image and Images return the image
// archives to import into containerd. A binary built with a plain
// `go build` has no assets: every function then returns an error matching
// ErrMissing that names the asset and says to build iks with `make`.
package embedded

import (
	"embed"
	"io/fs"
	"log/slog"
)

// PauseImage is the name of the embedded pod sandbox image, to configure as
// containerd's sandbox image.
const PauseImage = "iks.local/pause:1"

// Names of the embedded binaries, as staged in the bin directory.
const (
	Runc    = "runc"
	Crictl  = "crictl"
	Portmap = "portmap"
	// Shim is containerd's runc shim, kept a separate small binary so that
	// every running pod does not cost a copy of all of iks in memory.
	Shim = "containerd-shim-runc-v2"
	// Containerd is the containerd daemon the agent supervises, a separate
	// binary (as in k3s) so that it does not map and initialise all of iks.
	Containerd = "containerd"
	// CNI is the iks CNI plugin (cmd/iks-cni), a separate small binary so
	// that each pod add/delete does not start all of iks.
	CNI = "iks-cni"
)

// PauseArchive is the asset name of the pause image archive (PauseImage).
const PauseArchive = "pause.tar"

// CoreDNSArchive is the asset name of the CoreDNS image archive; its image
// name (iks.local/coredns:VERSION) comes from the manifest, see ImageName.
const CoreDNSArchive = "coredns.tar"

// ALBArchive is the asset name of the Ingress ALB image archive
// (cmd/iks-alb); its image name comes from the manifest, see ImageName.
const ALBArchive = "alb.tar"

// StrongSwanArchive is the asset name of the VPN gateway image (charon
// from Debian's strongSwan and the cmd/iks-vpn supervisor); its image
// name (iks.local/strongswan:VERSION) comes from the manifest.
const StrongSwanArchive = "strongswan.tar"

//go:embed all:assets
var assetsFS embed.FS

// assets is the embedded store; without `make` it holds only a README.
var assets = newEmbeddedStore()

func newEmbeddedStore() *store {
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		// fs.Sub fails only for an invalid path; "assets" is valid.
		panic(err)
	}
	return &store{fsys: sub, required: []string{Runc, Crictl, Portmap, Shim, Containerd, CNI, PauseArchive, CoreDNSArchive, ALBArchive, StrongSwanArchive}}
}

// Stage decompresses every embedded binary into binDir with mode 0755 and
// returns name → path (e.g. "runc" → binDir/runc). A file whose SHA-256
// already matches the manifest is left alone; any other is replaced
// atomically (temporary file, hash check of what was written, rename), so a
// corrupted or outdated file is repaired and a concurrent reader never sees
// a partial one.
func Stage(binDir string) (map[string]string, error) {
	return assets.stage(binDir)
}

// Image returns the decompressed OCI archive of one embedded image, named by
// asset name ("pause.tar") or by image name (PauseImage).
func Image(name string) ([]byte, error) {
	return assets.image(name)
}

// ImageName returns the image name of an embedded image archive, e.g.
// "iks.local/coredns:1.15.0" for CoreDNSArchive.
func ImageName(archive string) (string, error) {
	return assets.imageName(archive)
}

// Images returns every embedded image archive by asset name ("pause.tar").
// An asset that cannot be read is logged and left out; call Image for the
// error.
func Images() map[string][]byte {
	out, err := assets.images()
	if err != nil {
		slog.Error("embedded images incomplete", "component", "embedded", "err", err)
	}
	return out
}

// Manifest returns the manifest entries of all embedded assets by name, e.g.
// to report their versions.
func Manifest() (map[string]Asset, error) {
	return assets.manifest()
}
