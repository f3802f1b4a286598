package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/spf13/pflag"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"

	"github.com/iks-dev/iks/agent/cni"
	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/internal/config"
)

// dataDir is where the tools look for the node's state: IKS_DATA_DIR or
// the default.
func dataDir() string {
	if d := os.Getenv("IKS_DATA_DIR"); d != "" {
		return d
	}
	return config.DefaultDataDir
}

// dataDirFlag adds --data-dir/-d to fs, defaulting to dataDir().
func dataDirFlag(fs *pflag.FlagSet, p *string, usage string) {
	fs.StringVarP(p, "data-dir", "d", dataDir(), usage+" (env IKS_DATA_DIR)")
}

// runKubectl runs kubectl. Like k3s, with no KUBECONFIG and no
// ~/.kube/config it uses the admin kubeconfig iks wrote.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" && !hasFlag(args, "--kubeconfig") {
		home, _ := os.UserHomeDir()
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err != nil {
			for _, p := range []string{config.DefaultAdminKubeconfig, config.Paths{Root: dataDir()}.AdminKubeconfig()} {
				if _, err := os.Stat(p); err == nil {
					os.Setenv("KUBECONFIG", p)
					break
				}
			}
		}
	}
	cmd := kubectlcmd.NewDefaultKubectlCommand()
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || len(a) > len(name) && a[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

// runCrictl executes the crictl binary iks carries, against this node.
func runCrictl(args []string) int {
	p := config.Paths{Root: dataDir()}
	paths, err := embedded.Stage(p.BinDir())
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	bin, ok := paths["crictl"]
	if !ok {
		fmt.Fprintln(os.Stderr, "error: this iks binary carries no crictl; build it with `make`")
		return 1
	}
	env := os.Environ()
	if os.Getenv("CONTAINER_RUNTIME_ENDPOINT") == "" {
		env = append(env, "CONTAINER_RUNTIME_ENDPOINT=unix://"+p.ContainerdSocket())
	}
	if os.Getenv("IMAGE_SERVICE_ENDPOINT") == "" {
		env = append(env, "IMAGE_SERVICE_ENDPOINT=unix://"+p.ContainerdSocket())
	}
	if err := syscall.Exec(bin, append([]string{"crictl"}, args...), env); err != nil {
		fmt.Fprintln(os.Stderr, "error: exec crictl:", err)
	}
	return 1
}

// runCtr runs the embedded ctr with this node's socket and the k8s.io
// namespace as defaults.
func runCtr(args []string) int {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", config.Paths{Root: dataDir()}.ContainerdSocket())
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	if err := ctrapp.New().Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "ctr:", err)
		return 1
	}
	return 0
}

// runCNI is the iks CNI plugin, called by containerd.
func runCNI() int {
	cni.PluginMain()
	return 0
}
