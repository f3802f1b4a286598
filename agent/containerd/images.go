package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"

	"github.com/iks-dev/iks/internal/fsutil"
)

// Namespace is the containerd namespace the CRI plugin (and so kubelet) uses.
const Namespace = "k8s.io"

// criLabels mark imported images as CRI-managed and pinned, so kubelet's
// image garbage collection never deletes images that cannot be pulled
// again on an air-gapped host.
var criLabels = map[string]string{
	"io.cri-containerd.image":  "managed",
	"io.cri-containerd.pinned": "pinned",
}

// EmbeddedImage is one image archive carried by the binary.
type EmbeddedImage struct {
	Archive string // asset name, e.g. "pause.tar"
	Image   string // image name, e.g. "iks.local/pause:1"
	SHA256  string // digest of the archive: an unchanged one is not imported again
	// Data returns the decompressed, verified archive.
	Data func() ([]byte, error)
}

// EmbeddedImages lists the image archives carried by the binary (the pause
// and CoreDNS images); set by the agent from the embedded package.
type EmbeddedImages func() ([]EmbeddedImage, error)

// importImages imports the embedded archives not imported yet (or changed,
// or deleted from containerd since) and, with sideLoaded, every *.tar in
// the images dir whose size and mtime changed since the last import.
// first limits the embedded archives to the first first ones (-1: all),
// skip skips that many.
func (c *Containerd) importImages(ctx context.Context, cl *client.Client, skip, first int, sideLoaded bool) error {
	ctx = namespaces.WithNamespace(ctx, Namespace)
	t0 := time.Now()
	n := 0
	seen := c.loadImported()
	if c.Embedded != nil {
		imgs, err := c.Embedded()
		if err != nil {
			return fmt.Errorf("embedded images: %w", err)
		}
		imgs = imgs[min(skip, len(imgs)):]
		if first >= 0 {
			imgs = imgs[:min(first, len(imgs))]
		}
		for _, img := range imgs {
			key := "embedded:" + img.Archive
			if seen[key] == img.SHA256 && img.Image != "" {
				if _, err := cl.ImageService().Get(ctx, img.Image); err == nil {
					continue
				}
			}
			data, err := img.Data()
			if err != nil {
				return fmt.Errorf("embedded image %s: %w", img.Archive, err)
			}
			if err := importArchive(ctx, cl, bytes.NewReader(data)); err != nil {
				return fmt.Errorf("import embedded image %s: %w", img.Archive, err)
			}
			seen[key] = img.SHA256
			n++
		}
	}
	if !sideLoaded {
		c.saveImported(seen)
		c.log.Info("images imported", "count", n, "took", time.Since(t0).Round(time.Millisecond).String())
		return nil
	}
	entries, err := os.ReadDir(c.cfg.ImagesDir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read images dir: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".tar") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(c.cfg.ImagesDir, name)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		stamp := fmt.Sprintf("%d/%d", st.Size(), st.ModTime().UnixNano())
		if seen[name] == stamp {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("open image archive: %w", err)
		}
		err = importArchive(ctx, cl, f)
		f.Close()
		if err != nil {
			// A bad side-loaded archive must not stop the node.
			c.log.Error("cannot import image archive; fix or remove it", "file", p, "err", err)
			continue
		}
		seen[name] = stamp
		n++
	}
	c.saveImported(seen)
	c.log.Info("images imported", "count", n, "took", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

func importArchive(ctx context.Context, cl *client.Client, r io.Reader) error {
	imgs, err := cl.Import(ctx, r, client.WithImportPlatform(platforms.Default()), client.WithImageLabels(criLabels))
	if err != nil {
		return err
	}
	for _, i := range imgs {
		img := client.NewImage(cl, i)
		if err := img.Unpack(ctx, "overlayfs"); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}

func (c *Containerd) importedPath() string { return filepath.Join(c.cfg.Root, "imported.json") }

func (c *Containerd) loadImported() map[string]string {
	out := map[string]string{}
	if data, err := os.ReadFile(c.importedPath()); err == nil {
		_ = json.Unmarshal(data, &out)
	}
	return out
}

func (c *Containerd) saveImported(m map[string]string) {
	data, _ := json.Marshal(m)
	if err := fsutil.WriteFileAtomic(c.importedPath(), data, 0o600); err != nil {
		// Only costs a re-import at the next start.
		c.log.Warn("cannot record the imported images; they are imported again at the next start", "err", err)
	}
}
