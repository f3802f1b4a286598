#!/bin/sh
# iks-killall.sh: stops iks and everything it started on this machine: the
# server, containerd, the containerd shims and every pod process; then
# unmounts what they mounted, deletes the pod interfaces (cali*), the
# iptables chains and rules named CNI-*, KUBE-* and IKS-*, the iks.vxlan
# tunnel and its routes, the nftables tables of NAT outgoing (ip iks-nat),
# kube-proxy, iks and the portmap plugin, and the kubepods cgroups.
#
# Processes are ours when their executable is the installed iks binary or a
# file under the data dir (the staged runc, crictl, portmap), or when they
# sit in the pod cgroups under the configured cgroup root; never by name
# alone. Data (the data dir, the configuration) is kept: iks-uninstall.sh
# removes it. Safe to run when nothing runs; running it twice is harmless.
#
# install.sh writes the settings of the installation into the block below.
# Run from a checkout, the environment variables of the same names apply.
# IKS_STOP_TIMEOUT (seconds, default 30) bounds the wait for the server.
set -eu

# BEGIN IKS INSTALL SETTINGS
IKS_BIN_DIR=${IKS_BIN_DIR:-/usr/local/bin}
IKS_DATA_DIR=${IKS_DATA_DIR:-/var/lib/iks}
IKS_CONFIG_DIR=${IKS_CONFIG_DIR:-/etc/iks}
IKS_KUBECONFIG=${IKS_KUBECONFIG-/etc/iks/iks.yaml}
IKS_LOG=${IKS_LOG:-/var/log/iks.log}
IKS_PIDFILE=${IKS_PIDFILE:-/run/iks.pid}
IKS_SYSTEMD=${IKS_SYSTEMD:-auto}
IKS_SERVICE=${IKS_SERVICE:-iks}
IKS_CGROUP_ROOT=${IKS_CGROUP_ROOT:-/}
IKS_CREATED=${IKS_CREATED:-}
IKS_CREATED_BIN_DIR=${IKS_CREATED_BIN_DIR:-false}
# END IKS INSTALL SETTINGS

STOP_TIMEOUT=${IKS_STOP_TIMEOUT:-30}

log() { printf '[iks-killall] %s\n' "$*"; }
warn() { printf '[iks-killall] warning: %s\n' "$*" >&2; }
fatal() {
	printf '[iks-killall] error: %s\n' "$*" >&2
	exit 1
}
FAILED=0
problem() {
	printf '[iks-killall] error: %s\n' "$*" >&2
	FAILED=1
}
nap() { sleep 0.2 2>/dev/null || sleep 1; }
now() { date +%s; }

[ "$(id -u)" -eq 0 ] || fatal "iks-killall.sh must run as root: it stops processes, unmounts and changes the network (try: sudo $0)"
case $STOP_TIMEOUT in '' | *[!0-9]*) fatal "IKS_STOP_TIMEOUT=$STOP_TIMEOUT is not a number of seconds" ;; esac
case $IKS_DATA_DIR in
/*) ;;
*) fatal "the data dir \"$IKS_DATA_DIR\" is not an absolute path; set IKS_DATA_DIR to the --data-dir of iks" ;;
esac
case $IKS_CGROUP_ROOT in
/*) ;;
*) fatal "the cgroup root \"$IKS_CGROUP_ROOT\" is not absolute; set IKS_CGROUP_ROOT to the --cgroup-root of iks" ;;
esac

# canon PATH: the physical path of PATH when it is a directory.
canon() {
	if [ -d "$1" ]; then (cd "$1" && pwd -P); else printf '%s\n' "${1%/}"; fi
}
DATA_REAL=$(canon "$IKS_DATA_DIR")
case $DATA_REAL in
'' | / | /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/* | /var | /var/lib | /var/log)
	fatal "refusing to treat $DATA_REAL as the iks data dir: it is a system directory; set IKS_DATA_DIR to the --data-dir of iks" ;;
esac
BIN_REAL=$(canon "$IKS_BIN_DIR")/iks
# The program the launcher extracted: <prefix>/lib/iks/<version>/iks.
PROGRAM_DIR=$(dirname "$(canon "$IKS_BIN_DIR")")/lib/iks
CGROUP_REL=${IKS_CGROUP_ROOT%/}

# ---------------------------------------------------------------- processes

# is_ours PID: PID runs the installed iks binary (or the one it replaced),
# the program it extracted, or an executable under the data dir.
is_ours() {
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	case $exe in
	"$BIN_REAL" | "$BIN_REAL (deleted)" | "$DATA_REAL"/* | "$PROGRAM_DIR"/*) return 0 ;;
	esac
	return 1
}

our_pids() {
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" != "$$" ] || continue
		if is_ours "$pid"; then printf '%s\n' "$pid"; fi
	done
}

# server_pids: ours running `iks server` or `iks agent`.
server_pids() {
	for pid in $(our_pids); do
		sub=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p) || continue
		case $sub in server | agent) printf '%s\n' "$pid" ;; esac
	done
}

alive() {
	for pid in "$@"; do
		if is_ours "$pid"; then return 0; fi
	done
	return 1
}

# cgroup_mounts: mount points of the cgroup (v1) and cgroup2 hierarchies.
cgroup_mounts() {
	awk '{
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") { mp = $5; gsub(/\\040/, " ", mp); print mp }
	}' /proc/self/mountinfo | sort -u
}

# pod_cgroups: the kubepods cgroups (cgroupfs and systemd naming) under
# the cgroup root, in every hierarchy.
pod_cgroups() {
	cgroup_mounts | while IFS= read -r m; do
		for d in "$m$CGROUP_REL/kubepods" "$m$CGROUP_REL/kubepods.slice" "$m$CGROUP_REL"/*-kubepods.slice; do
			if [ -d "$d" ]; then printf '%s\n' "$d"; fi
		done
	done
}

cgroup_pids() {
	pod_cgroups | while IFS= read -r d; do
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
	done
}

# release_cgroups: thaws frozen pod cgroups so that SIGKILL gets through
# and, on cgroup v2, kills each subtree at once.
release_cgroups() {
	pod_cgroups | while IFS= read -r d; do
		find "$d" -name freezer.state 2>/dev/null | while IFS= read -r f; do echo THAWED >"$f" 2>/dev/null || true; done
		find "$d" -name cgroup.freeze 2>/dev/null | while IFS= read -r f; do echo 0 >"$f" 2>/dev/null || true; done
		if [ -f "$d/cgroup.kill" ]; then echo 1 >"$d/cgroup.kill" 2>/dev/null || true; fi
	done
}

stop_service() {
	case $IKS_SYSTEMD in false) return 0 ;; esac
	[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
	[ -f "/etc/systemd/system/$IKS_SERVICE.service" ] || return 0
	if systemctl is-active --quiet "$IKS_SERVICE"; then
		log "stopping $IKS_SERVICE.service"
		systemctl stop "$IKS_SERVICE" || problem "systemctl stop $IKS_SERVICE failed"
	fi
}

# stop_servers: SIGTERM to the server (pid file, or any `iks server` of
# this installation), SIGKILL after STOP_TIMEOUT seconds.
stop_servers() {
	pids=$(server_pids)
	if [ -f "$IKS_PIDFILE" ]; then
		p=$(cat "$IKS_PIDFILE" 2>/dev/null || true)
		case $p in
		'' | *[!0-9]*) ;;
		*) if is_ours "$p"; then pids="$p $pids"; fi ;;
		esac
	fi
	# shellcheck disable=SC2046,SC2086 # a list of pids
	set -- $(printf '%s\n' $pids | sort -un)
	if [ $# -gt 0 ]; then
		log "stopping iks server (pid $*)"
		kill -TERM "$@" 2>/dev/null || true
		deadline=$(($(now) + STOP_TIMEOUT))
		while alive "$@" && [ "$(now)" -lt "$deadline" ]; do nap; done
		if alive "$@"; then
			warn "iks server did not stop within ${STOP_TIMEOUT}s of SIGTERM; killing it"
			kill -KILL "$@" 2>/dev/null || true
		fi
	fi
	rm -f "$IKS_PIDFILE"
}

# kill_rest: containerd, shims and whatever runs in the pod cgroups.
kill_rest() {
	if [ "$CGROUP_REL" = "" ] && [ -d /sys/fs/cgroup/kubepods.slice ] && [ -d /run/systemd/system ] &&
		command -v systemctl >/dev/null 2>&1; then
		systemctl stop kubepods.slice 2>/dev/null || true
	fi
	deadline=$(($(now) + 30))
	first=true
	while :; do
		pids=$(
			our_pids
			cgroup_pids
		)
		pids=$(printf '%s\n' "$pids" | grep -v -x -e "$$" -e '' | sort -un || true)
		[ -n "$pids" ] || break
		if [ "$first" = true ]; then
			log "killing $(printf '%s\n' "$pids" | wc -l | tr -d ' ') processes of iks and its pods"
			first=false
		fi
		# shellcheck disable=SC2086 # a list of pids
		kill -KILL $pids 2>/dev/null || true
		release_cgroups
		if [ "$(now)" -ge "$deadline" ]; then
			problem "processes still running 30s after SIGKILL: $(printf '%s\n' "$pids" | tr '\n' ' ')(uninterruptible sleep? see ps -o pid,stat,wchan,args -p PID)"
			break
		fi
		nap
	done
}

# ---------------------------------------------------------------- runtime state

# clean_runtime_dirs: what the shims leave in /run/containerd when they are
# killed: their sockets (/run/containerd/s/<sha256>) and runc's state
# (/run/containerd/runc/<namespace>/<id>). Found through the task bundles in
# the data dir, so only this installation's.
clean_runtime_dirs() {
	tasks=$DATA_REAL/run/containerd/state/io.containerd.runtime.v2.task
	if [ -d "$tasks" ]; then
		for b in "$tasks"/*/*/; do
			[ -d "$b" ] || continue
			b=${b%/}
			id=${b##*/}
			ns=${b%/*}
			ns=${ns##*/}
			case $id$ns in *[!A-Za-z0-9_.-]*) continue ;; esac
			for sock in $(shim_sockets "$b" "$ns" "$id"); do
				case $sock in /run/containerd/s/*) rm -f "$sock" ;; esac
			done
			rm -rf "/run/containerd/runc/$ns/$id"
		done
	fi
	case " $IKS_CREATED " in
	*" /run/containerd "*)
		for d in /run/containerd/runc/*/ /run/containerd/runc /run/containerd/s /run/containerd; do
			if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
		done
		;;
	esac
}

# shim_sockets BUNDLE NS ID: the socket paths of the shim of a task: as
# recorded in the bundle (bootstrap.json, or address before containerd 2)
# and as containerd derives them (sha256 of <containerd socket>/NS/ID).
shim_sockets() {
	sed -n 's/.*"address"[[:space:]]*:[[:space:]]*"unix:\/\/\([^"]*\)".*/\1/p' "$1/bootstrap.json" 2>/dev/null || true
	sed -n 's/^unix:\/\/\(.*\)$/\1/p' "$1/address" 2>/dev/null || true
	if command -v sha256sum >/dev/null 2>&1; then
		for root in "$DATA_REAL" "${IKS_DATA_DIR%/}"; do
			for p in "$root/run/containerd/containerd.sock/$2/$3" "$root/run/containerd/containerd.sock/$2/$3/debug"; do
				printf '/run/containerd/s/%s\n' "$(printf '%s' "$p" | sha256sum | cut -d' ' -f1)"
			done
		done
	fi
}

# ---------------------------------------------------------------- mounts

# mounts_under DIR: mount points strictly below DIR, deepest first.
mounts_under() {
	awk -v p="$1/" '{
		mp = $5
		gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp); gsub(/\\012/, "\n", mp); gsub(/\\134/, "\\", mp)
		if (index(mp, p) == 1) { n = split(mp, parts, "/"); printf "%d\t%s\n", n, mp }
	}' /proc/self/mountinfo | sort -t "$(printf '\t')" -k1,1nr | cut -f2-
}

unmount_under() {
	pass=0
	while [ $pass -lt 10 ]; do
		list=$(mounts_under "$1")
		[ -n "$list" ] || return 0
		if [ $pass -eq 0 ]; then log "unmounting $(printf '%s\n' "$list" | wc -l | tr -d ' ') mounts under $1"; fi
		printf '%s\n' "$list" | while IFS= read -r mp; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done
		pass=$((pass + 1))
	done
	list=$(mounts_under "$1")
	[ -z "$list" ] || problem "still mounted under $1: $(printf '%s ' "$list")"
}

# ---------------------------------------------------------------- network

clean_links() {
	command -v ip >/dev/null 2>&1 || {
		warn "ip (iproute2) not found: pod interfaces (cali*) not deleted"
		return 0
	}
	ip -o link show type veth 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep '^cali' |
		while IFS= read -r l; do
			ip link delete "$l" 2>/dev/null || [ ! -e "/sys/class/net/$l" ] || problem "cannot delete interface $l"
		done || true
	# Routes to pods the CNI plugin installed (protocol 80) that outlived
	# their interface, and routes to other nodes' pod blocks the routing
	# agent installed (protocol 81), then its tunnel devices (VXLAN, or
	# IP-in-IP where the kernel has it).
	ip route flush proto 80 2>/dev/null || true
	ip route flush proto 81 2>/dev/null || true
	for dev in iks.vxlan iks.tunl; do
		if [ -e "/sys/class/net/$dev" ] || ip link show "$dev" >/dev/null 2>&1; then
			ip link delete "$dev" 2>/dev/null || problem "cannot delete interface $dev"
		fi
	done
	# LoadBalancer IPs the lb speaker announced (/32, label <uplink>:lb).
	ip -o -4 addr show label '*:lb' 2>/dev/null | awk '{ print $2, $4 }' |
		while read -r dev addr; do
			ip addr del "$addr" dev "$dev" 2>/dev/null || problem "cannot remove LoadBalancer IP $addr from $dev"
		done || true
}

# clean_xtables SAVE RESTORE: rewrites the tables holding CNI-*, KUBE-* or IKS-*
# chains or rules without them; other tables are not touched.
clean_xtables() {
	rules=$("$1" 2>/dev/null) || return 0
	printf '%s\n' "$rules" | grep -q -E 'CNI-|KUBE-|IKS-' || return 0
	printf '%s\n' "$rules" | awk '
		/^#/ { next }
		/^\*/ { table = $0; n = 0; dirty = 0; next }
		/^COMMIT/ {
			if (dirty) { print table; for (i = 1; i <= n; i++) print keep[i]; print "COMMIT" }
			next
		}
		/CNI-|KUBE-|IKS-/ { dirty = 1; next }
		{ keep[++n] = $0 }
	' | "$2" || problem "$2 failed to remove the CNI-*/KUBE-*/IKS-* rules; list them with: $1 | grep -E 'CNI-|KUBE-|IKS-'"
}

clean_iptables() {
	for fam in iptables ip6tables; do
		found=false
		for backend in legacy nft; do
			if command -v "$fam-$backend-save" >/dev/null 2>&1 && command -v "$fam-$backend-restore" >/dev/null 2>&1; then
				clean_xtables "$fam-$backend-save" "$fam-$backend-restore"
				found=true
			fi
		done
		if [ $found = false ] && command -v "$fam-save" >/dev/null 2>&1 && command -v "$fam-restore" >/dev/null 2>&1; then
			clean_xtables "$fam-save" "$fam-restore"
		fi
	done
	if command -v nft >/dev/null 2>&1; then
		nft list tables 2>/dev/null | while read -r _ family name; do
			case $name in
			kube-proxy* | iks* | cni_hostport)
				nft delete table "$family" "$name" 2>/dev/null || problem "cannot delete nftables table $family $name"
				;;
			esac
		done || true
	fi
}

# ---------------------------------------------------------------- cgroups

remove_cgroups() {
	pod_cgroups | while IFS= read -r d; do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ ! -d "$d" ] || problem "cannot remove cgroup $d: $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | wc -l | tr -d ' ') processes left"
	done
	if [ -n "$CGROUP_REL" ]; then
		# The cgroup root iks created: removed when nothing else lives there.
		cgroup_mounts | while IFS= read -r m; do
			if [ -d "$m$CGROUP_REL" ]; then rmdir "$m$CGROUP_REL" 2>/dev/null || true; fi
		done
	fi
}

# ---------------------------------------------------------------- main

stop_service
stop_servers
kill_rest
unmount_under "$DATA_REAL"
# The kubelet of iks keeps its pods in the data dir; /var/lib/kubelet gets
# only what kubelet hard-codes. A /var/lib/kubelet that was there before
# iks belongs to someone else, whose mounts are not touched.
case " $IKS_CREATED " in *" /var/lib/kubelet "*) unmount_under /var/lib/kubelet ;; esac
clean_runtime_dirs
clean_links
clean_iptables
remove_cgroups

if [ $FAILED -ne 0 ]; then
	fatal "iks is stopped only partly (errors above); fix them and run $0 again"
fi
log "iks is stopped; data in $IKS_DATA_DIR is kept (iks-uninstall.sh removes it)"
