#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (`make test`):
#   1. build bin/iks (make), gofmt and go vet;
#   2. unit and privileged package tests (netns-based tests need root);
#   3. integration: one real `iks server` in its own namespaces;
#   4. e2e: a server and agents in a two-subnet harness;
#   5. install/uninstall: install.sh then iks-uninstall.sh leave the host clean.
# Suites run one after the other: each starts real clusters on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

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

step "unit and privileged package tests"
# shellcheck disable=SC2046
go test -count=1 -timeout 15m $(go list ./... | grep -v '/tests/')

step "integration: single-node server"
go test -count=1 -v -timeout 25m ./tests/integration/

step "e2e: multi-node clusters"
go test -count=1 -v -timeout 30m ./tests/e2e/

if [[ -d tests/install ]]; then
	step "install.sh / iks-uninstall.sh"
	go test -count=1 -v -timeout 15m ./tests/install/
fi

step "all tests passed"
