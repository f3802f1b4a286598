// Command iks is IBM Cloud Kubernetes Service in a box: one binary that is
// the server, the agent and the tools (kubectl, crictl, ctr), and that
// containerd runs as the CNI plugin. containerd itself is a separate
// binary iks carries (see package embedded).
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args))
}

// run dispatches on the name the binary was called by (symlinks), then on
// the first argument, and returns the exit code.
func run(args []string) int {
	switch filepath.Base(args[0]) {
	case "kubectl":
		return runKubectl(args[1:])
	case "crictl":
		return runCrictl(args[1:])
	case "ctr":
		return runCtr(args)
	case "iks-cni":
		return runCNI()
	}
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}
