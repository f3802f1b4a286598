// Command iks-launcher is the `iks` binary users install: a small program
// carrying the whole iks program (cmd/iks) zstd-compressed, as k3s carries
// its own. The first run of a version extracts the program once to
//
//	<prefix>/lib/iks/<version hash>/iks   (/usr/local/bin/iks: /usr/local/lib/iks/...)
//
// or $IKS_PROGRAM_DIR/<version hash>/iks, and every run replaces itself
// with it (exec: same PID, arguments and environment), so the installed
// binary is about half the size of the program and a warm start costs one
// stat. The data dir is not used: a refused start must leave no data dir.
// When the prefix cannot be written (a user without root running `iks
// kubectl`), the user's cache dir is used; when nothing can be written,
// an in-memory file.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "iks:", err)
		os.Exit(1)
	}
}
