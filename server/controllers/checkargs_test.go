package controllers

import (
	"strings"
	"testing"
)

func TestCheckArgs(t *testing.T) {
	if err := CheckControllerManagerArgs([]string{"--terminated-pod-gc-threshold=10"}); err != nil {
		t.Errorf("known controller-manager flag refused: %v", err)
	}
	if err := CheckControllerManagerArgs([]string{"--terminated-pod-gc=10"}); err == nil || !strings.Contains(err.Error(), "terminated-pod-gc") ||
		!strings.Contains(err.Error(), "--kube-controller-manager-arg") {
		t.Errorf("misspelt controller-manager flag: %v", err)
	}
	if err := CheckSchedulerArgs([]string{"--profiling=false"}); err != nil {
		t.Errorf("known scheduler flag refused: %v", err)
	}
	if err := CheckSchedulerArgs([]string{"--profiling=maybe"}); err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Errorf("bad scheduler value: %v", err)
	}
}
