package controllers

import (
	"fmt"

	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// CheckControllerManagerArgs parses the flags a user adds
// (--kube-controller-manager-arg) with kube-controller-manager's own flag
// set, so a misspelt flag or a bad value is refused before iks writes
// anything.
func CheckControllerManagerArgs(extra []string) error {
	if len(extra) == 0 {
		return nil
	}
	s, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("kube-controller-manager options: %w", err)
	}
	nfs := s.Flags(cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases())
	if err := parseNamed("kube-controller-manager", nfs, extra); err != nil {
		return fmt.Errorf("--kube-controller-manager-arg: %w (give its flags as flag=value without dashes)", err)
	}
	return nil
}

// CheckSchedulerArgs does the same for --kube-scheduler-arg.
func CheckSchedulerArgs(extra []string) error {
	if len(extra) == 0 {
		return nil
	}
	opts := schedoptions.NewOptions()
	if err := parseNamed("kube-scheduler", *opts.Flags, extra); err != nil {
		return fmt.Errorf("--kube-scheduler-arg: %w (give its flags as flag=value without dashes)", err)
	}
	return nil
}
