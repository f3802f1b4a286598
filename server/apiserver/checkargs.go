package apiserver

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// CheckArgs parses the flags a user adds (--kube-apiserver-arg) with
// kube-apiserver's own flag set, so a misspelt flag or a bad value is
// refused before iks writes anything.
func CheckArgs(extra []string) error {
	if len(extra) == 0 {
		return nil
	}
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(extra); err != nil {
		return fmt.Errorf("--kube-apiserver-arg: %w (see kube-apiserver --help for its flags; give them as flag=value without dashes)", err)
	}
	return nil
}
