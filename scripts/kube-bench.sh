#!/usr/bin/env bash
# kube-bench.sh — builds kube-bench (github.com/aquasecurity/kube-bench)
# into bin/kube-bench for the CIS benchmark run (TestCISBench in
# `make bench`, profile cis/iks-cis-1.9). From the Go module proxy when it
# serves the module; where it does not (an offline mirror, a proxy that
# refuses it), from a source checkout: KUBE_BENCH_SRC=/path/to/kube-bench.
#   scripts/kube-bench.sh                      # go install @KUBE_BENCH_VERSION
#   KUBE_BENCH_SRC=~/src/kube-bench scripts/kube-bench.sh
# Run it on a node (as root, jq installed):
#   bin/kube-bench run --config-dir cis --benchmark iks-cis-1.9
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$PWD/bin/kube-bench
version=${KUBE_BENCH_VERSION:-v0.15.6}
mkdir -p bin
if [ -n "${KUBE_BENCH_SRC:-}" ]; then
	[ -f "$KUBE_BENCH_SRC/go.mod" ] || { echo "kube-bench.sh: $KUBE_BENCH_SRC has no go.mod: point KUBE_BENCH_SRC at a kube-bench checkout" >&2; exit 1; }
	(cd "$KUBE_BENCH_SRC" && CGO_ENABLED=0 go build -o "$out" .)
else
	if ! GOBIN=$PWD/bin CGO_ENABLED=0 go install "github.com/aquasecurity/kube-bench@$version"; then
		echo "kube-bench.sh: the module proxy did not serve github.com/aquasecurity/kube-bench@$version;" >&2
		echo "  clone it elsewhere and run KUBE_BENCH_SRC=/path/to/kube-bench $0" >&2
		exit 1
	fi
fi
echo "kube-bench.sh: built $out"
