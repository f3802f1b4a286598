package testutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// StageImage side-loads an image archive the k3s way before the node
// starts: a copy named name in <data-dir>/agent/images, imported at start.
func (n *Node) StageImage(src, name string) {
	n.t.Helper()
	if err := stageFile(src, filepath.Join(n.DataDir, "agent", "images", name)); err != nil {
		n.t.Fatal(err)
	}
}

// stageFile hard-links src to dst, or copies it when they are on
// different filesystems.
func stageFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
