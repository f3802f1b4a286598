// Command pause is the sandbox ("pause") container process of iks pods.
//
// Like the upstream Kubernetes pause program it holds the pod's namespaces
// open, reaps zombie children (it is PID 1 of pods that share their PID
// namespace) and exits 0 on SIGINT or SIGTERM. It is built statically from
// this repository and shipped inside the iks binary as the image
// iks.local/pause:1, so no registry is needed.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is printed by "pause -v"; set with -ldflags "-X main.version=...".
var version = "1"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause.go version", version)
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// Printed after the handlers are installed: tests wait for it.
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		return
	}
}

// reap collects every exited child without blocking. Signals coalesce, so
// one SIGCHLD may stand for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
