package main

import (
	"bytes"
	"strings"
	"testing"
)

// A stream as `go test -json` writes it: one pass, one skip with its
// reason, one failure with its output, and package results.
const stream = `{"Action":"start","Package":"example/a"}
{"Action":"run","Package":"example/a","Test":"TestOK"}
{"Action":"output","Package":"example/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"example/a","Test":"TestOK"}
{"Action":"run","Package":"example/a","Test":"TestRoot"}
{"Action":"output","Package":"example/a","Test":"TestRoot","Output":"=== RUN   TestRoot\n"}
{"Action":"output","Package":"example/a","Test":"TestRoot","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"example/a","Test":"TestRoot","Output":"--- SKIP: TestRoot (0.00s)\n"}
{"Action":"skip","Package":"example/a","Test":"TestRoot"}
{"Action":"output","Package":"example/a","Output":"ok  \texample/a\t0.01s\n"}
{"Action":"pass","Package":"example/a"}
`

const failing = `{"Action":"run","Package":"example/b","Test":"TestBad"}
{"Action":"output","Package":"example/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"example/b","Test":"TestBad","Output":"    b_test.go:7: got 1, want 2\n"}
{"Action":"output","Package":"example/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"example/b","Test":"TestBad"}
{"Action":"output","Package":"example/b","Output":"FAIL\texample/b\t0.01s\n"}
{"Action":"fail","Package":"example/b"}
`

func TestSummaryCountsSkipsWithReasons(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(stream), &out, false, -1); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"1 passed, 0 failed, 1 skipped",
		"SKIP example/a TestRoot: a_test.go:9: needs root",
		"ok  \texample/a",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestOK") {
		t.Errorf("non-verbose output shows a passing test's output:\n%s", got)
	}
	out.Reset()
	if err := run(strings.NewReader(stream), &out, true, -1); err != nil || !strings.Contains(out.String(), "=== RUN   TestOK") {
		t.Errorf("verbose: err %v, output lacks the passing test's lines:\n%s", err, out.String())
	}
}

func TestSummaryFailsOnFailureAndShowsItsOutput(t *testing.T) {
	var out bytes.Buffer
	err := run(strings.NewReader(stream+failing), &out, false, -1)
	if err == nil || !strings.Contains(err.Error(), "1 test(s) failed") {
		t.Fatalf("got %v, want 1 failed test", err)
	}
	for _, want := range []string{"b_test.go:7: got 1, want 2", "--- FAIL: TestBad", "FAIL example/b", "1 passed, 1 failed, 1 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSummaryMaxSkipsAndEmptyInput(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(stream), &out, false, 0); err == nil || !strings.Contains(err.Error(), "1 test(s) skipped") {
		t.Errorf("max-skips 0 with one skip: got %v", err)
	}
	if err := run(strings.NewReader("no json here\n"), &out, false, -1); err == nil || !strings.Contains(err.Error(), "no test ran") {
		t.Errorf("input without tests: got %v", err)
	}
	build := `{"ImportPath":"example/c","Action":"build-output","Output":"c.go:3:1: syntax error\n"}
{"ImportPath":"example/c","Action":"build-fail"}
`
	out.Reset()
	if err := run(strings.NewReader(stream+build), &out, false, -1); err == nil || !strings.Contains(out.String(), "c.go:3:1: syntax error") {
		t.Errorf("build failure: got %v, output:\n%s", err, out.String())
	}
}
