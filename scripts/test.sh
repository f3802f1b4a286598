#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (`make test`):
#   1. build bin/iks (make), gofmt and go vet;
#   2. unit and privileged package tests (netns-based tests need root);
#   3. integration: one real `iks server` in its own namespaces;
#   4. e2e: a server and agents in a two-subnet harness;
#   5. install/uninstall: install.sh then iks-uninstall.sh leave the host clean.
# Suites run one after the other: each starts real clusters on 2 cores.
#
# Privileged tests (network namespaces, cgroups, BIRD, nft) skip when not
# root or a tool is missing. With IKS_REQUIRE_PRIVILEGED=1 (set by .ci/run,
# and the default for root when $CI is set) such a skip is a failure, so a
# suite cannot pass with its privileged tests unrun. Every suite ends with
# a count of passed, failed and skipped tests and each skip's reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

if [[ $(id -u) -eq 0 && -n ${CI:-} ]]; then
	export IKS_REQUIRE_PRIVILEGED=${IKS_REQUIRE_PRIVILEGED:-1}
fi
if [[ $(id -u) -ne 0 ]]; then
	if [[ ${IKS_REQUIRE_PRIVILEGED:-} == 1 ]]; then
		echo "test.sh: IKS_REQUIRE_PRIVILEGED=1 but not root: the privileged tests cannot run; use sudo make test" >&2
		exit 1
	fi
	echo "WARNING: not root: every privileged test (network namespaces, clusters, install) will SKIP;" >&2
	echo "WARNING: this run proves little. Use sudo make test (CI sets IKS_REQUIRE_PRIVILEGED=1)." >&2
fi

step "prerequisites"
# The same list .ci/run installs from: a missing one is named with its
# install command here, not deep inside a test.
bash scripts/prereqs.sh check build runtime test

step "build"
make

step "gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './embedded/assets/*'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

# testsum prints the tests' output (only failures' without -v) and the
# count of passed, failed and skipped tests; it fails on any failure.
testsum=$(mktemp -d)/testsum
trap 'rm -rf "$(dirname "$testsum")"' EXIT
go build -o "$testsum" ./scripts/testsum
skipped_total=0
# suite NAME TESTSUM-FLAGS -- GO-TEST-ARGS: one go test run, summarised.
suite() {
	local name=$1 flags=() log
	shift
	while [[ $1 != -- ]]; do flags+=("$1"); shift; done
	shift
	log=$(mktemp)
	go test -json -count=1 "$@" | "$testsum" "${flags[@]}" | tee "$log"
	local n
	n=$(sed -n 's/^--- summary: .* \([0-9]*\) skipped$/\1/p' "$log")
	rm -f "$log"
	skipped_total=$((skipped_total + ${n:-0}))
	printf '(%s: %s skipped)\n' "$name" "${n:-0}"
}

step "unit and privileged package tests"
# Every package but the cluster suites below, benchmarks and conformance
# (tests/testutil and tests/images/* included).
# shellcheck disable=SC2046
suite unit -- -timeout 15m $(go list ./... | grep -Ev '/tests/(integration|e2e|install|bench|conformance)$')

step "integration: single-node server"
suite integration -v -- -v -timeout 25m ./tests/integration/

step "e2e: multi-node clusters"
suite e2e -v -- -v -timeout 30m ./tests/e2e/

if [[ -d tests/install ]]; then
	step "install.sh / iks-uninstall.sh"
	suite install -v -- -v -timeout 15m ./tests/install/
fi

step "all tests passed ($skipped_total skipped${IKS_REQUIRE_PRIVILEGED:+, IKS_REQUIRE_PRIVILEGED=$IKS_REQUIRE_PRIVILEGED})"
