package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output / build-fail events
}

// skip is one skipped test and why.
type skip struct{ pkg, test, reason string }

// summary follows the event stream: it buffers each test's output until
// the test ends and prints it if it failed (or always, when verbose).
type summary struct {
	w          io.Writer
	verbose    bool
	out        map[string][]string // pkg + " " + test -> buffered output
	passed     int
	failed     int
	failedPkgs []string
	skips      []skip
}

func newSummary(w io.Writer, verbose bool) *summary {
	return &summary{w: w, verbose: verbose, out: map[string][]string{}}
}

// read consumes the stream. Lines that are not JSON (a panic of go test
// itself, a vet message) are printed as they are.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(s.w, "%s\n", line)
			continue
		}
		s.handle(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read go test -json output: %w", err)
	}
	return nil
}

func (s *summary) handle(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.w, e.Output)
	case "build-fail":
		s.failedPkgs = append(s.failedPkgs, e.ImportPath+" (build failed)")
	case "output":
		if s.verbose || e.Test == "" {
			// Package lines ("ok", "FAIL", "--- FAIL" of a package
			// panic, TestMain output) are always printed.
			fmt.Fprint(s.w, e.Output)
			return
		}
		s.out[key] = append(s.out[key], e.Output)
	case "pass", "fail", "skip":
		lines := s.out[key]
		delete(s.out, key)
		if e.Test == "" {
			if e.Action == "fail" {
				s.failedPkgs = append(s.failedPkgs, e.Package)
			}
			return
		}
		switch e.Action {
		case "pass":
			s.passed++
		case "fail":
			s.failed++
			if !s.verbose {
				fmt.Fprint(s.w, strings.Join(lines, ""))
			}
		case "skip":
			s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(lines)})
		}
	}
}

// skipReason picks the t.Skip message out of a skipped test's output: the
// lines that are not the harness's own "=== RUN" / "--- SKIP" headers.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

// report prints the counts, every skip with its reason, and the failures.
func (s *summary) report() {
	fmt.Fprintf(s.w, "\n--- summary: %d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skips))
	sort.Slice(s.skips, func(i, j int) bool {
		if s.skips[i].pkg != s.skips[j].pkg {
			return s.skips[i].pkg < s.skips[j].pkg
		}
		return s.skips[i].test < s.skips[j].test
	})
	for _, k := range s.skips {
		fmt.Fprintf(s.w, "    SKIP %s %s: %s\n", k.pkg, k.test, k.reason)
	}
	for _, p := range s.failedPkgs {
		fmt.Fprintf(s.w, "    FAIL %s\n", p)
	}
}
