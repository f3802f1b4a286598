#!/usr/bin/env bash
# prereqs.sh — the ONE list of what building, running and testing iks needs
# from the host, used by `make`, install.sh and .ci/run alike.
#
#   scripts/prereqs.sh check   [GROUP...]   print each missing prerequisite and
#                                           the command that installs it; exit 1
#                                           when one is missing
#   scripts/prereqs.sh install [GROUP...]   install the missing ones with apt-get
#                                           (dnf where there is no apt-get),
#                                           saying what and why; needs root
#   scripts/prereqs.sh list    [GROUP...]   print the list
#
# GROUP is build (compile bin/iks), runtime (run a node), test (the test
# suites, used by .ci/run only); default: build runtime.
#
# Go is not installed from the distribution (its Go is usually older than
# go.mod asks for): its version is checked and the way to get it is named.
# /usr/local/go/bin is searched when go is not in PATH.
#
# Environment: IKS_PREREQS_DRY_RUN=true makes `install` print the package
# manager commands instead of running them (for tests).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'prereqs: %s\n' "$*" >&2; }

# The list. One entry per line, fields separated by '|':
#   group | name | probe | Debian/Ubuntu package | Fedora/RHEL package | why
# probe: cmd:NAME (NAME in PATH), pc:NAME (pkg-config module and its static
# library), libc-static, file:PATH.
PREREQS='
build|make|cmd:make|make|make|runs the build (Makefile)
build|git|cmd:git|git|git|names the version of the binary (git describe)
build|gcc|cmd:gcc|build-essential|gcc|compiles runc (cgo: nsenter, seccomp)
build|static libc|libc-static|libc6-dev|glibc-static|links runc statically
build|pkg-config|cmd:pkg-config|pkg-config|pkgconf-pkg-config|finds libseccomp for the runc build
build|libseccomp|pc:libseccomp|libseccomp-dev|libseccomp-devel libseccomp-static|seccomp in runc (pods get the RuntimeDefault profile)
build|zstd|cmd:zstd|zstd|zstd|compresses the assets carried in the binary
build|sha256sum|cmd:sha256sum|coreutils|coreutils|hashes the carried assets
build|charon-systemd|file:/usr/sbin/charon-systemd|charon-systemd|strongswan|the VPN gateway image carries its charon (scripts/build-assets.sh)
build|charon plugins|file:/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so|libcharon-extra-plugins|strongswan|kernel-libipsec (ESP without kernel ESP) in the VPN gateway image
build|charon crypto|file:/usr/lib/ipsec/plugins/libstrongswan-openssl.so|libstrongswan-standard-plugins|strongswan|the openssl plugin (IKE and ESP ciphers) in the VPN gateway image; a recommended package apt-get leaves out with --no-install-recommends
runtime|iptables|cmd:iptables|iptables|iptables-nft|NAT of pod traffic leaving the cluster, hostPort (portmap), kube-proxy iptables mode
runtime|iptables-restore|cmd:iptables-restore|iptables|iptables-nft|loads the NAT outgoing chain atomically
runtime|nft|cmd:nft|nftables|nftables|kube-proxy nftables mode and network policy (without it kube-proxy falls back to iptables and NetworkPolicies are not enforced)
runtime|mount|cmd:mount|mount|util-linux|kubelet mounts pod volumes (secrets, config maps, projected tokens)
runtime|umount|cmd:umount|mount|util-linux|kubelet and iks-killall.sh unmount pod volumes
runtime|modprobe|cmd:modprobe|kmod|kmod|loads overlay and br_netfilter before the service starts
runtime|ip|cmd:ip|iproute2|iproute|iks-killall.sh removes iks interfaces and addresses
runtime|ps|cmd:ps|procps|procps-ng|iks-killall.sh finds the processes of the node
runtime|CA certificates|file:/etc/ssl/certs/ca-certificates.crt|ca-certificates|ca-certificates|containerd pulls images from registries over TLS
test|bird|cmd:bird|bird2|bird|e2e tests peer a real BGP router with the nodes
test|nsenter|cmd:nsenter|util-linux|util-linux|tests run iks in network namespaces
test|curl|cmd:curl|curl|curl|tests fetch pages from services
test|nginx|cmd:nginx|nginx-light|nginx|the ALB benchmark compares the ALB with nginx on the same backends
test|wrk|cmd:wrk|wrk|wrk|the ALB benchmark drives the load
test|openssl|cmd:openssl|openssl|openssl|the ALB benchmark makes the nginx certificate
test|swanctl|cmd:swanctl|strongswan-swanctl|strongswan|e2e tests run a stock strongSwan as the remote VPN site
'

usage() {
	cat >&2 <<'EOF'
usage: scripts/prereqs.sh check|install|list [build] [runtime] [test]
EOF
	exit 2
}

# find_go prints the go command to use (PATH first, then /usr/local/go/bin).
find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

# version_ge A B: dotted version A >= B.
version_ge() {
	local IFS=.
	local -a a=($1) b=($2)
	local i
	for ((i = 0; i < ${#b[@]} || i < ${#a[@]}; i++)); do
		local x=${a[i]:-0} y=${b[i]:-0}
		((10#$x > 10#$y)) && return 0
		((10#$x < 10#$y)) && return 1
	done
	return 0
}

# check_go prints a problem with Go, if any.
check_go() {
	local want have gocmd
	want=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$ROOT/go.mod" | head -n 1)
	local get="download go${want%.0} or newer for $(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/') from https://go.dev/dl/, then: sudo tar -C /usr/local -xzf go*.linux-*.tar.gz && export PATH=/usr/local/go/bin:\$PATH"
	if ! gocmd=$(find_go); then
		echo "go: not found (needed: Go $want or newer, as go.mod says); $get"
		return
	fi
	have=$("$gocmd" env GOVERSION 2>/dev/null || true)
	have=${have#go}
	have=${have%%[!0-9.]*}
	if [[ -z $have ]] || ! version_ge "$have" "$want"; then
		echo "go: $gocmd is Go ${have:-of an unknown version}, go.mod needs $want or newer; $get"
	fi
}

# present PROBE: the probe succeeds on this host.
present() {
	local probe=$1
	case $probe in
	cmd:*) command -v "${probe#cmd:}" >/dev/null 2>&1 ;;
	file:*) [[ -e ${probe#file:} ]] ;;
	libc-static)
		command -v gcc >/dev/null 2>&1 || return 1
		local p
		p=$(gcc -print-file-name=libc.a 2>/dev/null) && [[ $p == /* && -e $p ]]
		;;
	pc:*)
		local mod=${probe#pc:} libdir
		command -v pkg-config >/dev/null 2>&1 || return 1
		pkg-config --exists "$mod" 2>/dev/null || return 1
		libdir=$(pkg-config --variable=libdir "$mod" 2>/dev/null) || return 1
		[[ -e $libdir/$mod.a ]]
		;;
	*) log "unknown probe $probe in the list"; return 1 ;;
	esac
}

# package_manager prints apt or dnf, or nothing.
package_manager() {
	if command -v apt-get >/dev/null 2>&1; then
		echo apt
	elif command -v dnf >/dev/null 2>&1; then
		echo dnf
	fi
}

install_cmd() { # install_cmd PM PACKAGES...
	local pm=$1
	shift
	case $pm in
	apt) echo "sudo apt-get install -y $*" ;;
	dnf) echo "sudo dnf install -y $*" ;;
	*) echo "install $* (Debian names) with your distribution's package manager" ;;
	esac
}

in_groups() { # in_groups GROUP: GROUP was asked for
	local g
	for g in "${GROUPS_ASKED[@]}"; do [[ $g == "$1" ]] && return 0; done
	return 1
}

# scan fills MISSING_NAMES, MISSING_PKGS (for PM), MISSING_LINES.
scan() {
	local pm=$1 group name probe deb rpm why pkg
	MISSING_NAMES=() MISSING_PKGS=() MISSING_LINES=() GO_PROBLEM=
	if in_groups build; then GO_PROBLEM=$(check_go); fi
	while IFS='|' read -r group name probe deb rpm why; do
		[[ -n $group ]] || continue
		in_groups "$group" || continue
		present "$probe" && continue
		if [[ $pm == dnf ]]; then pkg=$rpm; else pkg=$deb; fi
		MISSING_NAMES+=("$name")
		local p
		for p in $pkg; do
			[[ " ${MISSING_PKGS[*]} " == *" $p "* ]] || MISSING_PKGS+=("$p")
		done
		MISSING_LINES+=("$name ($group: $why): $(install_cmd "$pm" $pkg)")
	done <<<"$PREREQS"
}

cmd_list() {
	local group name probe deb rpm why
	while IFS='|' read -r group name probe deb rpm why; do
		[[ -n $group ]] || continue
		in_groups "$group" || continue
		printf '%-8s %-16s %-18s %s\n' "$group" "$name" "$deb" "$why"
	done <<<"$PREREQS"
	if in_groups build; then
		printf '%-8s %-16s %-18s %s\n' build go "(go.dev/dl)" "Go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$ROOT/go.mod") or newer compiles iks"
	fi
}

cmd_check() {
	local pm
	pm=$(package_manager)
	scan "$pm"
	local n=${#MISSING_LINES[@]} line
	[[ -n $GO_PROBLEM ]] && n=$((n + 1))
	if ((n == 0)); then
		log "all ${GROUPS_ASKED[*]} prerequisites found"
		return 0
	fi
	log "missing ${GROUPS_ASKED[*]} prerequisites:"
	[[ -z $GO_PROBLEM ]] || printf '  - %s\n' "$GO_PROBLEM" >&2
	for line in "${MISSING_LINES[@]}"; do printf '  - %s\n' "$line" >&2; done
	if ((${#MISSING_PKGS[@]} > 0)); then
		log "install them all with: $(install_cmd "$pm" "${MISSING_PKGS[@]}")"
		[[ -n $pm ]] || log "(no apt-get or dnf here: the names above are Debian's; on Fedora/RHEL they are in this script's list)"
	fi
	return 1
}

cmd_install() {
	local pm dry=false
	case ${IKS_PREREQS_DRY_RUN:-false} in true | 1 | yes) dry=true ;; esac
	pm=$(package_manager)
	scan "$pm"
	local line rc=0
	if ((${#MISSING_PKGS[@]} > 0)); then
		if [[ -z $pm ]]; then
			for line in "${MISSING_LINES[@]}"; do printf '  - %s\n' "$line" >&2; done
			log "error: no apt-get or dnf on this machine: install the packages above with its package manager, then retry"
			return 1
		fi
		if [[ $dry == false && $(id -u) != 0 ]]; then
			log "error: installing ${MISSING_PKGS[*]} needs root: run this as root (sudo)"
			return 1
		fi
		log "installing ${GROUPS_ASKED[*]} prerequisites with $pm: ${MISSING_PKGS[*]}"
		for line in "${MISSING_LINES[@]}"; do printf '  - %s\n' "$line" >&2; done
		local -a cmds
		if [[ $pm == apt ]]; then
			cmds=("apt-get update" "apt-get install -y --no-install-recommends ${MISSING_PKGS[*]}")
		else
			cmds=("dnf install -y ${MISSING_PKGS[*]}")
		fi
		local c
		for c in "${cmds[@]}"; do
			log "+ $c"
			if [[ $dry == false ]]; then
				# shellcheck disable=SC2086 # the command is word-split on purpose
				DEBIAN_FRONTEND=noninteractive $c >&2 || { log "error: '$c' failed"; return 1; }
			fi
		done
		if [[ $dry == false ]]; then
			scan "$pm"
			if ((${#MISSING_LINES[@]} > 0)); then
				for line in "${MISSING_LINES[@]}"; do printf '  - %s\n' "$line" >&2; done
				log "error: still missing after the install: ${MISSING_NAMES[*]}"
				rc=1
			fi
		fi
	else
		log "all ${GROUPS_ASKED[*]} prerequisites found"
	fi
	if [[ -n $GO_PROBLEM ]]; then
		printf '  - %s\n' "$GO_PROBLEM" >&2
		log "error: Go is not installed by this script (distributions ship older ones); install it as above"
		rc=1
	fi
	return $rc
}

main() {
	(($# >= 1)) || usage
	local mode=$1
	shift
	GROUPS_ASKED=("$@")
	((${#GROUPS_ASKED[@]} > 0)) || GROUPS_ASKED=(build runtime)
	local g
	for g in "${GROUPS_ASKED[@]}"; do
		case $g in build | runtime | test) ;; *) log "error: unknown group '$g': use build, runtime or test"; exit 2 ;; esac
	done
	case $mode in
	check) cmd_check ;;
	install) cmd_install ;;
	list) cmd_list ;;
	*) usage ;;
	esac
}

main "$@"
