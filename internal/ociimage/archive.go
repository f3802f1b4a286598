package ociimage

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationImageName is the index annotation containerd reads the full image
// name from when importing an archive (containerd's images.AnnotationImageName).
const AnnotationImageName = "io.containerd.image.name"

// Write writes img as an OCI image-layout tar archive (oci-layout, index.json,
// blobs/sha256/...) to w.
func Write(w io.Writer, img Image) error {
	blobs, index, err := build(img)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("encode oci-layout: %w", err)
	}
	if err := writeFile(tw, ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	if err := writeFile(tw, ocispec.ImageIndexFile, index); err != nil {
		return err
	}
	for _, dir := range []string{ocispec.ImageBlobsDir + "/", ocispec.ImageBlobsDir + "/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write archive directory %q: %w", dir, err)
		}
	}
	for _, b := range blobs {
		if err := writeFile(tw, blobPath(b.digest), b.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish image archive: %w", err)
	}
	return nil
}

// WriteFile writes img as an OCI archive to the file at path, atomically: a
// reader never sees a half-written archive.
func WriteFile(path string, img Image) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create temporary file next to %q: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := Write(tmp, img); err != nil {
		return fmt.Errorf("write image %q to %q: %w", img.Name, path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %q: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %q: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %q to %q: %w", tmp.Name(), path, err)
	}
	return nil
}

type blob struct {
	digest digest.Digest
	data   []byte
}

func blobPath(d digest.Digest) string {
	return ocispec.ImageBlobsDir + "/" + d.Algorithm().String() + "/" + d.Encoded()
}

// build returns the blobs (layer, config, manifest in that order) and the
// index.json content of img.
func build(img Image) ([]blob, []byte, error) {
	name, err := parseName(img.Name)
	if err != nil {
		return nil, nil, err
	}
	ports, err := exposedPorts(img.ExposedPorts)
	if err != nil {
		return nil, nil, fmt.Errorf("image %q: %w", img.Name, err)
	}
	lay, err := buildLayer(img.Files)
	if err != nil {
		return nil, nil, fmt.Errorf("image %q: %w", img.Name, err)
	}
	created := epoch
	platform := ocispec.Platform{Architecture: "amd64", OS: "linux"}

	config, err := json.Marshal(ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config: ocispec.ImageConfig{
			Env:          envWithPath(img.Env),
			Entrypoint:   img.Entrypoint,
			Cmd:          img.Cmd,
			WorkingDir:   img.WorkingDir,
			ExposedPorts: ports,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{lay.diffID}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "iks ociimage",
			Comment:   "single layer built from in-memory files",
		}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode image config of %q: %w", img.Name, err)
	}
	layerDesc := descriptor(ocispec.MediaTypeImageLayerGzip, lay.blob)
	configDesc := descriptor(ocispec.MediaTypeImageConfig, config)

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode image manifest of %q: %w", img.Name, err)
	}
	manifestDesc := descriptor(ocispec.MediaTypeImageManifest, manifest)
	manifestDesc.Platform = &platform
	manifestDesc.Annotations = map[string]string{
		AnnotationImageName:       name.full,
		ocispec.AnnotationRefName: name.tag,
	}

	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode image index of %q: %w", img.Name, err)
	}
	blobs := []blob{
		{digest: layerDesc.Digest, data: lay.blob},
		{digest: configDesc.Digest, data: config},
		{digest: manifestDesc.Digest, data: manifest},
	}
	return blobs, index, nil
}

func descriptor(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     int64(len(data)),
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write archive entry %q: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write archive entry %q: %w", name, err)
	}
	return nil
}
