package integration

import (
	"os/exec"

	"k8s.io/apimachinery/pkg/util/intstr"
)

func intstrFromInt(i int) intstr.IntOrString { return intstr.FromInt32(int32(i)) }

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
