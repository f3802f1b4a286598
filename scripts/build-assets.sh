#!/usr/bin/env bash
# build-assets.sh OUTDIR — builds, from source with Go, the external programs
# the iks binary carries and writes them zstd-compressed into OUTDIR (default
# embedded/assets) with a manifest.json that embedded.Stage checks against:
#
#   runc          github.com/opencontainers/runc     static, CGO (nsenter), seccomp (static libseccomp)
#   crictl        sigs.k8s.io/cri-tools ./cmd/crictl static
#   portmap       containernetworking/plugins        static CNI meta plugin
#   containerd-shim-runc-v2  containerd's runc shim  static; a separate small
#                 binary, so each shim does not carry (and initialise) all of iks
#   containerd    containerd v2 daemon (CRI included)   static, CGO off, without the
#                 btrfs, devmapper, zfs snapshotters and tracing (as k3s carries
#                 it in its data dir): the agent runs it as a child, and a separate
#                 ~40 MB binary costs far less memory than re-executing all of iks
#   iks-cni       this repo's cmd/iks-cni, the CNI plugin: static, CGO off; its
#                 own binary so that every pod add/delete does not start all of iks
#   pause.tar     this repo's cmd/pause packed as the OCI image iks.local/pause:1
#   coredns.tar   github.com/coredns/coredns with a reduced plugin set (see
#                 COREDNS_PLUGINS), static, packed as iks.local/coredns:VERSION
#                 (the cluster DNS add-on the server deploys from manifests/)
#   alb.tar       this repo's cmd/iks-alb, the Ingress ALB, static, packed as
#                 iks.local/alb:KEY (KEY: a hash of its sources, so that a
#                 changed ALB rolls the Deployments the server creates)
#   strongswan.tar the VPN gateway image iks.local/strongswan:VERSION: Debian's
#                 charon-systemd with the few plugins a PSK gateway needs
#                 (kernel-libipsec included) and the shared libraries they
#                 load, copied from this host's packages (charon-systemd,
#                 libcharon-extra-plugins), plus this repo's cmd/iks-vpn
#                 (static) as entrypoint; see STRONGSWAN_PLUGINS
#
# Sources come from the Go module proxy (`go mod download`), never from a
# container registry, so the build works wherever Go modules resolve. Build
# caches stay in the normal GOCACHE.
# An asset whose inputs (version, this script, Go version, zstd level, own
# sources) are unchanged is not rebuilt: a second run takes under a second.
#
# runc is built with seccomp against the static libseccomp (Debian
# libseccomp-dev): containerd gives every pod sandbox the RuntimeDefault
# profile, which a runc without seccomp refuses.
#
# Requires: go, a C compiler with a static glibc (libc6-dev) and libseccomp-dev
# (static libseccomp.a, pkg-config) for runc, zstd.
# ZSTD_LEVEL (default 19) trades build time for binary size.
set -euo pipefail

RUNC_VERSION=v1.3.6
CRICTL_VERSION=v1.36.0
CNI_PLUGINS_VERSION=v1.9.1
# Must match github.com/containerd/containerd/v2 in go.mod.
CONTAINERD_VERSION=$(sed -n 's#^[[:space:]]*github.com/containerd/containerd/v2 \(v[^ ]*\).*#\1#p' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")
PAUSE_VERSION=1
COREDNS_VERSION=v1.15.0
COREDNS_IMAGE=iks.local/coredns:${COREDNS_VERSION#v}
# The CoreDNS plugins compiled in: what manifests/coredns.yaml's Corefile
# uses, plus a few a user may add to it (hosts, loadbalance, log). Dropping
# the cloud back-ends, etcd, dnstap, tracing and the rest keeps the image
# small and the build short.
COREDNS_PLUGINS=(kubernetes forward cache errors health ready log loop reload loadbalance hosts metrics)
PAUSE_IMAGE=iks.local/pause:${PAUSE_VERSION}
# The charon plugins the gateway image carries (cmd/iks-vpn loads them).
STRONGSWAN_PLUGINS=(random nonce openssl pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici)
ZSTD_LEVEL=${ZSTD_LEVEL:-19}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/embedded/assets}
mkdir -p "$OUT/.stamps"
OUT=$(cd "$OUT" && pwd)

log() { printf 'build-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in go zstd sha256sum; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH: install it (zstd: apt-get install zstd)"
done

export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
SCRIPT_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
GO_VERSION=$(go env GOVERSION)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/iks-assets.XXXXXX")
cleanup() { chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }

# input_key NAME VERSION [FILES...]: hash of everything that determines an asset.
input_key() {
	local name=$1 version=$2
	shift 2
	{
		printf '%s\n' "$name" "$version" "$SCRIPT_HASH" "$GO_VERSION" "$ZSTD_LEVEL"
		if (($#)); then sha256sum "$@"; fi
	} | sha256sum | cut -d' ' -f1
}

stamp_get() { sed -n "s/^$2=//p" "$OUT/.stamps/$1" 2>/dev/null; }

# up_to_date NAME KEY: the stamp matches and the compressed file is intact.
up_to_date() {
	local name=$1 key=$2 file
	[[ -f $OUT/.stamps/$name && $(stamp_get "$name" key) == "$key" ]] || return 1
	file=$OUT/$(stamp_get "$name" file)
	[[ -f $file && $(sha "$file") == "$(stamp_get "$name" zsha256)" ]]
}

# fetch_module MODULE VERSION DEST: copies the module's source tree from the
# module cache (read-only) into DEST, a writable build directory.
fetch_module() {
	local mod=$1 version=$2 dest=$3 json dir
	# A throwaway module, so that no go.mod above TMPDIR is picked up.
	mkdir -p "$WORK/dl"
	[[ -f $WORK/dl/go.mod ]] || printf 'module iks.local/build-assets\n' >"$WORK/dl/go.mod"
	if ! json=$(cd "$WORK/dl" && go mod download -json "$mod@$version"); then
		die "go mod download $mod@$version failed: $json — check the version exists on the module proxy"
	fi
	dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
	[[ -n $dir && -d $dir ]] || die "no source directory for $mod@$version in: $json"
	cp -R "$dir" "$dest"
	chmod -R u+w "$dest"
}

# install_asset NAME KIND VERSION KEY SRC [IMAGE]: compresses SRC into
# OUT/NAME.zst and records the stamp the manifest is made from.
install_asset() {
	local name=$1 kind=$2 version=$3 key=$4 src=$5 image=${6:-}
	local file=$name.zst level=$ZSTD_LEVEL
	# An image archive's layer is gzip already: zstd cannot shrink it, and
	# a high level only costs minutes.
	[[ $kind == image ]] && level=1
	zstd -q -f "-$level" -T0 --no-progress -o "$WORK/$file" "$src"
	mv -f "$WORK/$file" "$OUT/$file"
	cat >"$OUT/.stamps/$name.tmp" <<-EOF
		key=$key
		kind=$kind
		file=$file
		version=$version
		image=$image
		sha256=$(sha "$src")
		size=$(stat -c %s "$src")
		zsha256=$(sha "$OUT/$file")
		zsize=$(stat -c %s "$OUT/$file")
	EOF
	mv -f "$OUT/.stamps/$name.tmp" "$OUT/.stamps/$name"
	log "$name $version: $(stat -c %s "$src") bytes, $(stat -c %s "$OUT/$file") compressed"
}

# check_static BIN: refuses a binary that needs a dynamic loader.
check_static() {
	if command -v readelf >/dev/null && readelf -l "$1" | grep -q 'program interpreter'; then
		die "$1 is dynamically linked; it must be static to run on any host"
	fi
}

# check_version BIN WANT [ARGS...]: BIN runs and its output contains WANT.
check_version() {
	local bin=$1 want=$2 out
	shift 2
	out=$("$bin" "$@" 2>&1) || die "$bin $* failed: $out"
	[[ $out == *"$want"* ]] || die "$bin $* printed \"$out\", want \"$want\""
}

build_runc() {
	local key src=$WORK/runc
	key=$(input_key runc "$RUNC_VERSION")
	if up_to_date runc "$key"; then log "runc $RUNC_VERSION: up to date"; return; fi
	log "runc $RUNC_VERSION: building"
	fetch_module github.com/opencontainers/runc "$RUNC_VERSION" "$src"
	# The module zip has no vendored code, only vendor/modules.txt: use the
	# module cache instead. nsenter is C, so CGO; seccomp links the static
	# libseccomp. VERSION is embedded by runc itself; -X main.version agrees.
	(cd "$src" && rm -rf vendor && CGO_ENABLED=1 go build -mod=mod -trimpath \
		-tags "seccomp netgo osusergo urfave_cli_no_docs" \
		-ldflags "-s -w -extldflags -static -X main.version=${RUNC_VERSION#v}" \
		-o "$WORK/out/runc" .)
	check_static "$WORK/out/runc"
	check_version "$WORK/out/runc" "runc version ${RUNC_VERSION#v}" --version
	install_asset runc binary "$RUNC_VERSION" "$key" "$WORK/out/runc"
}

build_crictl() {
	local key src=$WORK/cri-tools
	key=$(input_key crictl "$CRICTL_VERSION")
	if up_to_date crictl "$key"; then log "crictl $CRICTL_VERSION: up to date"; return; fi
	log "crictl $CRICTL_VERSION: building"
	fetch_module sigs.k8s.io/cri-tools "$CRICTL_VERSION" "$src"
	(cd "$src" && CGO_ENABLED=0 go build -mod=mod -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
		-o "$WORK/out/crictl" ./cmd/crictl)
	check_static "$WORK/out/crictl"
	check_version "$WORK/out/crictl" "crictl version $CRICTL_VERSION" --version
	install_asset crictl binary "$CRICTL_VERSION" "$key" "$WORK/out/crictl"
}

build_portmap() {
	local key src=$WORK/plugins
	key=$(input_key portmap "$CNI_PLUGINS_VERSION")
	if up_to_date portmap "$key"; then log "portmap $CNI_PLUGINS_VERSION: up to date"; return; fi
	log "portmap $CNI_PLUGINS_VERSION: building"
	fetch_module github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION" "$src"
	(cd "$src" && CGO_ENABLED=0 go build -mod=mod -trimpath \
		-ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
		-o "$WORK/out/portmap" ./plugins/meta/portmap)
	check_static "$WORK/out/portmap"
	# Without CNI_COMMAND a CNI plugin prints its name and version.
	check_version "$WORK/out/portmap" "CNI portmap plugin $CNI_PLUGINS_VERSION"
	install_asset portmap binary "$CNI_PLUGINS_VERSION" "$key" "$WORK/out/portmap"
}

build_shim() {
	local key src=$WORK/containerd name=containerd-shim-runc-v2
	[[ -n $CONTAINERD_VERSION ]] || die "cannot read the containerd version from go.mod"
	key=$(input_key $name "$CONTAINERD_VERSION")
	if up_to_date $name "$key"; then log "$name $CONTAINERD_VERSION: up to date"; return; fi
	log "$name $CONTAINERD_VERSION: building"
	fetch_module github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$src"
	(cd "$src" && rm -rf vendor && CGO_ENABLED=0 go build -mod=mod -trimpath \
		-tags "urfave_cli_no_docs no_grpc" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
		-o "$WORK/out/$name" ./cmd/containerd-shim-runc-v2)
	check_static "$WORK/out/$name"
	check_version "$WORK/out/$name" "$CONTAINERD_VERSION" -v
	install_asset $name binary "$CONTAINERD_VERSION" "$key" "$WORK/out/$name"
}

build_containerd() {
	local key src=$WORK/containerd-daemon name=containerd
	[[ -n $CONTAINERD_VERSION ]] || die "cannot read the containerd version from go.mod"
	key=$(input_key $name "$CONTAINERD_VERSION")
	if up_to_date $name "$key"; then log "$name $CONTAINERD_VERSION: up to date"; return; fi
	log "$name $CONTAINERD_VERSION: building"
	fetch_module github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$src"
	(cd "$src" && rm -rf vendor && CGO_ENABLED=0 go build -mod=mod -trimpath \
		-tags "urfave_cli_no_docs no_btrfs no_devmapper no_zfs no_tracing" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
		-o "$WORK/out/$name" ./cmd/containerd)
	check_static "$WORK/out/$name"
	check_version "$WORK/out/$name" "$CONTAINERD_VERSION" --version
	install_asset $name binary "$CONTAINERD_VERSION" "$key" "$WORK/out/$name"
}

build_cni() {
	local key f inputs=(go.mod go.sum) dir
	# Every source of this repository that the plugin is built from.
	while read -r dir; do
		for f in "$dir"/*.go; do
			[[ $f == *_test.go ]] || inputs+=("${f#"$ROOT"/}")
		done
	done < <(cd "$ROOT" && go list -deps -f '{{if not .Standard}}{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}{{end}}' ./cmd/iks-cni)
	key=$(cd "$ROOT" && input_key iks-cni 1 "${inputs[@]}")
	if up_to_date iks-cni "$key"; then log "iks-cni: up to date"; return; fi
	log "iks-cni: building"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/out/iks-cni" ./cmd/iks-cni)
	check_static "$WORK/out/iks-cni"
	# Without CNI_COMMAND a CNI plugin prints its name and versions.
	check_version "$WORK/out/iks-cni" "iks pod network plugin"
	install_asset iks-cni binary "$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo dev)" "$key" "$WORK/out/iks-cni"
}

build_pause() {
	local key f inputs=(go.mod)
	for f in "$ROOT"/cmd/pause/*.go "$ROOT"/internal/ociimage/*.go "$ROOT"/scripts/mkimage/*.go; do
		[[ $f == *_test.go ]] || inputs+=("${f#"$ROOT"/}")
	done
	key=$(cd "$ROOT" && input_key pause.tar "$PAUSE_VERSION" "${inputs[@]}")
	if up_to_date pause.tar "$key"; then log "pause.tar $PAUSE_IMAGE: up to date"; return; fi
	log "pause.tar $PAUSE_IMAGE: building"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X main.version=$PAUSE_VERSION" -o "$WORK/out/pause" ./cmd/pause &&
		go build -trimpath -o "$WORK/out/mkimage" ./scripts/mkimage)
	check_static "$WORK/out/pause"
	check_version "$WORK/out/pause" "pause.go version $PAUSE_VERSION" -v
	"$WORK/out/mkimage" -name "$PAUSE_IMAGE" -bin "$WORK/out/pause" -entrypoint /pause -o "$WORK/out/pause.tar"
	install_asset pause.tar image "$PAUSE_VERSION" "$key" "$WORK/out/pause.tar" "$PAUSE_IMAGE"
}

build_coredns() {
	local key src=$WORK/coredns plugin imports= f inputs=(go.mod)
	for f in "$ROOT"/internal/ociimage/*.go "$ROOT"/scripts/mkimage/*.go; do
		[[ $f == *_test.go ]] || inputs+=("${f#"$ROOT"/}")
	done
	key=$(cd "$ROOT" && input_key coredns.tar "$COREDNS_VERSION $COREDNS_IMAGE ${COREDNS_PLUGINS[*]}" "${inputs[@]}")
	if up_to_date coredns.tar "$key"; then log "coredns.tar $COREDNS_IMAGE: up to date"; return; fi
	log "coredns.tar $COREDNS_IMAGE: building (${COREDNS_PLUGINS[*]})"
	fetch_module github.com/coredns/coredns "$COREDNS_VERSION" "$src"
	# A small main in a generated directory of CoreDNS's own module (so its
	# go.mod and go.sum pin every dependency) that registers only the
	# chosen plugins instead of core/plugin's full list.
	for plugin in "${COREDNS_PLUGINS[@]}"; do
		imports+=$'\t_ "github.com/coredns/coredns/plugin/'"$plugin"$'"\n'
	done
	mkdir -p "$src/iks-coredns"
	cat >"$src/iks-coredns/main.go" <<-EOF
		// Command coredns is CoreDNS with the plugin set iks needs (generated by
		// iks scripts/build-assets.sh).
		package main

		import (
		$imports
			"github.com/coredns/coredns/coremain"
		)

		func main() { coremain.Run() }
	EOF
	gofmt -w "$src/iks-coredns/main.go"
	(cd "$src" && CGO_ENABLED=0 go build -mod=mod -trimpath \
		-ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=iks" \
		-o "$WORK/out/coredns" ./iks-coredns)
	check_static "$WORK/out/coredns"
	check_version "$WORK/out/coredns" "CoreDNS-${COREDNS_VERSION#v}" -version
	# Every plugin the Corefile uses must be compiled in.
	local listed
	listed=$("$WORK/out/coredns" -plugins)
	for plugin in kubernetes forward cache errors health ready loop reload; do
		grep -Eq "^[[:space:]]*(dns\.)?$plugin\$" <<<"$listed" || die "coredns lacks plugin $plugin: ${listed//$'\n'/ }"
	done
	[[ -x $WORK/out/mkimage ]] || (cd "$ROOT" && go build -trimpath -o "$WORK/out/mkimage" ./scripts/mkimage)
	"$WORK/out/mkimage" -name "$COREDNS_IMAGE" -bin "$WORK/out/coredns" -entrypoint /coredns \
		-port 53/udp -port 53/tcp -o "$WORK/out/coredns.tar" -- -conf /etc/coredns/Corefile
	install_asset coredns.tar image "$COREDNS_VERSION" "$key" "$WORK/out/coredns.tar" "$COREDNS_IMAGE"
}

build_alb() {
	local key f tag inputs=(go.mod go.sum)
	for f in "$ROOT"/cmd/iks-alb/*.go "$ROOT"/internal/alb/*/*.go "$ROOT"/internal/ociimage/*.go "$ROOT"/scripts/mkimage/*.go; do
		[[ $f == *_test.go ]] || inputs+=("${f#"$ROOT"/}")
	done
	key=$(cd "$ROOT" && input_key alb.tar alb "${inputs[@]}")
	tag=${key:0:12}
	if up_to_date alb.tar "$key"; then log "alb.tar iks.local/alb:$tag: up to date"; return; fi
	log "alb.tar iks.local/alb:$tag: building"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X main.version=$tag" -o "$WORK/out/iks-alb" ./cmd/iks-alb)
	check_static "$WORK/out/iks-alb"
	check_version "$WORK/out/iks-alb" "iks-alb version $tag" -version
	[[ -x $WORK/out/mkimage ]] || (cd "$ROOT" && go build -trimpath -o "$WORK/out/mkimage" ./scripts/mkimage)
	"$WORK/out/mkimage" -name "iks.local/alb:$tag" -bin "$WORK/out/iks-alb" -entrypoint /iks-alb \
		-port 8080/tcp -port 8443/tcp -o "$WORK/out/alb.tar"
	install_asset alb.tar image "$tag" "$key" "$WORK/out/alb.tar" "iks.local/alb:$tag"
}

build_strongswan() {
	local key f inputs=(go.mod go.sum) dir version charon=/usr/sbin/charon-systemd image lib
	local -a files=() objs=()
	[[ -x $charon ]] || die "$charon not found: install Debian's strongSwan (apt-get install charon-systemd libcharon-extra-plugins strongswan-swanctl, or scripts/prereqs.sh install build)"
	version=$(dpkg-query -W -f '${Version}' charon-systemd 2>/dev/null) || die "cannot read the version of the charon-systemd package"
	image=iks.local/strongswan:${version//[^A-Za-z0-9._-]/-}
	while read -r dir; do
		for f in "$dir"/*.go; do
			[[ $f == *_test.go ]] || inputs+=("${f#"$ROOT"/}")
		done
	done < <(cd "$ROOT" && go list -deps -f '{{if not .Standard}}{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}{{end}}' ./cmd/iks-vpn ./scripts/mkimage)
	key=$(cd "$ROOT" && input_key strongswan.tar "$version ${STRONGSWAN_PLUGINS[*]}" "${inputs[@]}")
	if up_to_date strongswan.tar "$key"; then log "strongswan.tar $image: up to date"; return; fi
	log "strongswan.tar $image: building"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/out/iks-vpn" ./cmd/iks-vpn)
	check_static "$WORK/out/iks-vpn"
	[[ -x $WORK/out/mkimage ]] || (cd "$ROOT" && go build -trimpath -o "$WORK/out/mkimage" ./scripts/mkimage)
	objs=("$charon")
	for f in "${STRONGSWAN_PLUGINS[@]}"; do
		[[ -f /usr/lib/ipsec/plugins/libstrongswan-$f.so ]] || die "charon plugin $f missing: apt-get install libcharon-extra-plugins libstrongswan-standard-plugins"
		objs+=("/usr/lib/ipsec/plugins/libstrongswan-$f.so")
	done
	# Every object and the shared libraries each loads (ldd resolves the
	# whole closure), at the paths the loader looks them up.
	declare -A seen=()
	for f in "${objs[@]}"; do
		seen[$f]=1
		while read -r lib; do
			[[ -n $lib ]] && seen[$lib]=1
		done < <(ldd "$f" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
	done
	# glibc dlopens libgcc_s for pthread_cancel, which charon uses: put
	# it beside the libc that ldd found.
	lib=$(ldd "$charon" | sed -n 's/.*libc\.so\.6 => \(\/[^ ]*\)\/libc\.so\.6 .*/\1/p')
	[[ -f $lib/libgcc_s.so.1 ]] || die "libgcc_s.so.1 not found beside libc in $lib: install libgcc-s1"
	seen[$lib/libgcc_s.so.1]=1
	for f in "${!seen[@]}"; do
		files+=(-file "$f:$f")
	done
	"$WORK/out/mkimage" -name "$image" -bin "$WORK/out/iks-vpn" -entrypoint /iks-vpn \
		-env IKS_VPN_CHARON=$charon -port 500/udp -port 4500/udp "${files[@]}" -o "$WORK/out/strongswan.tar"
	install_asset strongswan.tar image "$version" "$key" "$WORK/out/strongswan.tar" "$image"
}

# write_manifest: manifest.json from the stamps, atomically.
write_manifest() {
	local name sep=
	{
		printf '{\n'
		for name in "$@"; do
			printf '%s  "%s": {"kind": "%s", "file": "%s", "version": "%s", "image": "%s", "sha256": "%s", "size": %s, "compressed_size": %s}' \
				"$sep" "$name" "$(stamp_get "$name" kind)" "$(stamp_get "$name" file)" \
				"$(stamp_get "$name" version)" "$(stamp_get "$name" image)" \
				"$(stamp_get "$name" sha256)" "$(stamp_get "$name" size)" "$(stamp_get "$name" zsize)"
			sep=$',\n'
		done
		printf '\n}\n'
	} >"$OUT/manifest.json.tmp"
	mv -f "$OUT/manifest.json.tmp" "$OUT/manifest.json"
}

mkdir -p "$WORK/out"
start=$SECONDS
build_runc
build_crictl
build_portmap
build_shim
build_containerd
build_cni
build_pause
build_coredns
build_alb
build_strongswan
write_manifest runc crictl portmap containerd-shim-runc-v2 containerd iks-cni pause.tar coredns.tar alb.tar strongswan.tar
log "assets in $OUT ready after $((SECONDS - start))s"
