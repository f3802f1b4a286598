# iks build entry points.
#
#   make          check the build prerequisites, build the embedded assets
#                 when needed, then bin/iks (one progress line per phase):
#                 a launcher carrying the program compressed
#   make prereqs  only check the build prerequisites (scripts/prereqs.sh)
#   make assets   only (re)build the embedded assets (scripts/build-assets.sh)
#   make test     run the test suites (scripts/test.sh)
#   make bench    run the benchmarks (scripts/bench.sh)
#   make clean    remove bin/ and the built assets
#
# A plain `go build ./cmd/iks` works too, but the binary then carries no
# runc, crictl, portmap or pause image and refuses to start a node.
# `go build ./cmd/iks-launcher` alone carries no program and says so.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ASSETS  := embedded/assets
K8S_VERSION := v1.36.3
K8S_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(K8S_VERSION)+iks -X $(p).gitMajor=1 -X $(p).gitMinor=36 -X $(p).gitTreeState=clean)
# kustomize_disable_go_plugin_support: kubectl's kustomize otherwise links
# Go's plugin package, which makes the linker export every symbol (-rdynamic):
# ~37 MB of dynamic symbol tables and less dead-code elimination. Upstream
# kubectl is built with the same tag.
TAGS    := kustomize_disable_go_plugin_support
LDFLAGS := -s -w -X github.com/iks-dev/iks/internal/version.Version=$(VERSION) $(K8S_LDFLAGS)

.PHONY: all prereqs assets build test bench conformance clean

all: build

# phase NAME: one progress line per build phase, with the seconds since
# `make` started (MAKE_T0 is set once and passed to sub-makes).
ifndef MAKE_T0
MAKE_T0 := $(shell date +%s)
endif
export MAKE_T0
phase = @echo "make: [$$(( $$(date +%s) - $(MAKE_T0) ))s] $(1)"

# The build prerequisites (Go version, gcc, static libc, pkg-config,
# libseccomp, zstd), from the list install.sh and .ci/run use: what is
# missing is named with the command that installs it, before any cgo build.
prereqs:
	$(call phase,checking the build prerequisites (scripts/prereqs.sh))
	@bash scripts/prereqs.sh check build

# The script itself skips every asset whose inputs did not change, so this
# costs well under a second when nothing is to do.
assets: prereqs
	$(call phase,building the embedded assets (runc, shim, crictl, portmap, pause and CoreDNS images))
	bash scripts/build-assets.sh $(ASSETS)

# bin/iks is a small launcher carrying the program zstd-compressed
# (cmd/iks-launcher); it extracts it once per version into the data dir,
# as k3s does. bin/iks-unpacked is the program itself (profiling, nm).
build: assets
	$(call phase,compiling the iks program (Kubernetes included: minutes on a cold cache))
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/iks-unpacked ./cmd/iks
	$(call phase,packing it into bin/iks ($$(du -m bin/iks-unpacked | cut -f1) MB program, zstd))
	zstd -q -f -6 -T0 bin/iks-unpacked -o cmd/iks-launcher/payload/iks.zst
	sha256sum cmd/iks-launcher/payload/iks.zst | cut -c1-16 > cmd/iks-launcher/payload/iks.version
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/iks ./cmd/iks-launcher
	$(call phase,bin/iks built ($$(du -m bin/iks | cut -f1) MB))

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

# Upstream conformance (sig-network by default) on a 3-node cluster in the
# e2e harness; needs ../shared/conformance/setup.sh /tmp/conf first.
conformance: build
	IKS_CONFORMANCE=1 go test -count=1 -v -timeout 3h ./tests/conformance/

clean:
	rm -rf bin lib cmd/iks-launcher/payload/iks.zst cmd/iks-launcher/payload/iks.version
	find $(ASSETS) -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
