// Package controllers runs kube-controller-manager and kube-scheduler
// in-process, after the apiserver is ready (they need RBAC bootstrapped).
package controllers

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// parseNamed parses args into the union of a component's named flag sets.
func parseNamed(name string, nfs cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is returned; no usage dump
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	return nil
}
