package apiserver

import (
	"strings"
	"testing"
)

func TestCheckArgs(t *testing.T) {
	if err := CheckArgs([]string{"--audit-log-path=/var/log/iks/audit.log", "--audit-log-maxage=30"}); err != nil {
		t.Errorf("known flags refused: %v", err)
	}
	err := CheckArgs([]string{"--audit-log-pth=/x"})
	if err == nil || !strings.Contains(err.Error(), "audit-log-pth") || !strings.Contains(err.Error(), "--kube-apiserver-arg") {
		t.Errorf("a misspelt flag: %v", err)
	}
	if err := CheckArgs([]string{"--audit-log-maxage=thirty"}); err == nil || !strings.Contains(err.Error(), "thirty") {
		t.Errorf("a bad value: %v", err)
	}
	// Twice in one process (the server checks, then the component starts).
	if err := CheckArgs([]string{"--profiling=false"}); err != nil {
		t.Errorf("second check: %v", err)
	}
}
