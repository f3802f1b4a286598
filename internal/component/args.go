package component

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/iks-dev/iks/internal/fsutil"
)

// WriteArgs records the command line an embedded component runs with in
// dir/name, one line "name --flag=value ...". k3s logs the same line
// ("Running kube-apiserver ..."); iks keeps it in a file (0600) beside
// the node's state, so an operator, and CIS audits such as kube-bench
// (cis/iks-cis-1.9), read the flags of components that are not processes
// of their own. An empty dir records nothing.
func WriteArgs(dir, name string, args []string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record %s's flags: %w", name, err)
	}
	line := name + " " + strings.Join(args, " ") + "\n"
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), []byte(line), 0o600); err != nil {
		return fmt.Errorf("record %s's flags: %w", name, err)
	}
	return nil
}
