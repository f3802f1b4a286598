package cni

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain makes the test binary act as the plugin when it is executed
// through a symlink named PluginType, as the iks binary does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == PluginType {
		PluginMain()
		return
	}
	os.Exit(m.Run())
}
