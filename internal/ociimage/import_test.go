package ociimage

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	ctrarchive "github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestContainerdImport feeds an archive to containerd's own importer (the
// code behind `ctr images import` and client.Import) and resolves the image
// the way containerd does: by the index annotation, then manifest, config and
// layers for linux/amd64.
func TestContainerdImport(t *testing.T) {
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	indexDesc, err := ctrarchive.ImportIndex(ctx, store, bytes.NewReader(writeArchive(t, testImage())))
	if err != nil {
		t.Fatalf("containerd rejected the archive: %v", err)
	}
	indexJSON, err := content.ReadBlob(ctx, store, indexDesc)
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	mustUnmarshal(t, indexJSON, &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(index.Manifests))
	}
	target := index.Manifests[0]
	// client.Import names images after this annotation.
	if name := target.Annotations[images.AnnotationImageName]; name != "iks.local/httpd:1" {
		t.Errorf("containerd would name the image %q", name)
	}

	platform := platforms.Only(ocispec.Platform{OS: "linux", Architecture: "amd64"})
	img := images.Image{Name: "iks.local/httpd:1", Target: target}
	available, _, _, missing, err := images.Check(ctx, store, target, platform)
	if err != nil || !available || len(missing) != 0 {
		t.Fatalf("images.Check: available=%v missing=%v err=%v", available, missing, err)
	}
	diffIDs, err := img.RootFS(ctx, store, platform)
	if err != nil || len(diffIDs) != 1 {
		t.Fatalf("RootFS: %v %v", diffIDs, err)
	}
	cfgDesc, err := img.Config(ctx, store, platform)
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, err := content.ReadBlob(ctx, store, cfgDesc)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Entrypoint[0] != "/bin/httpd" {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
}
