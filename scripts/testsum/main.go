// Command testsum reads `go test -json` on stdin, prints the tests' output
// for people, and ends with a count of passed, failed and skipped tests and
// the reason of every skip, so a suite that "passed" by skipping shows it:
//
//	go test -json ./... | go run ./scripts/testsum [-v] [-max-skips N]
//
// Without -v only failed tests' output and the package result lines are
// printed; with -v everything is streamed as `go test -v` would. It exits
// 1 when a test or a build failed, when the input has no test events at all,
// or when more than -max-skips tests skipped (-1, the default: no limit).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	verbose := flag.Bool("v", false, "stream every test's output, not only failures'")
	maxSkips := flag.Int("max-skips", -1, "fail when more tests skipped than this (-1: no limit)")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *verbose, *maxSkips); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
}

// run summarises the events of r into w.
func run(r io.Reader, w io.Writer, verbose bool, maxSkips int) error {
	s := newSummary(w, verbose)
	if err := s.read(r); err != nil {
		return err
	}
	s.report()
	switch {
	case s.failed > 0 || len(s.failedPkgs) > 0:
		return fmt.Errorf("%d test(s) failed, %d package(s) failed", s.failed, len(s.failedPkgs))
	case s.passed+s.failed+len(s.skips) == 0:
		return fmt.Errorf("no test ran (is the input `go test -json` output?)")
	case maxSkips >= 0 && len(s.skips) > maxSkips:
		return fmt.Errorf("%d test(s) skipped, at most %d allowed", len(s.skips), maxSkips)
	}
	return nil
}
