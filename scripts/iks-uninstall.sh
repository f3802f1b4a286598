#!/bin/sh
# iks-uninstall.sh: removes iks from this machine. It runs iks-killall.sh
# (stops iks, its containers and pods, unmounts, cleans the network), then
# removes the systemd unit, the binary and its kubectl/crictl/ctr symlinks
# (only symlinks to iks), these scripts, the configuration directory, the
# admin kubeconfig, the data dir (etcd, PKI, images: everything of the
# cluster), the log and pid files, and what kubelet and containerd left in
# host paths: /var/lib/kubelet, /var/lib/cni, /var/log/containers,
# /var/log/pods, /run/containerd. Those are removed only if they did not
# exist before iks was first installed (install.sh records that); otherwise
# only this installation's entries in them go.
#
# install.sh writes the settings of the installation into the block below.
# Run from a checkout, the environment variables of the same names apply.
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

log() { printf '[iks-uninstall] %s\n' "$*"; }
warn() { printf '[iks-uninstall] warning: %s\n' "$*" >&2; }
fatal() {
	printf '[iks-uninstall] error: %s\n' "$*" >&2
	exit 1
}
FAILED=0
problem() {
	printf '[iks-uninstall] error: %s\n' "$*" >&2
	FAILED=1
}

[ "$(id -u)" -eq 0 ] || fatal "iks-uninstall.sh must run as root (try: sudo $0)"

# checked_dir NAME PATH: PATH is absolute and not a system directory, so
# that removing it recursively cannot hurt the system.
checked_dir() {
	case $2 in
	/*) ;;
	*) fatal "$1 \"$2\" is not an absolute path; fix the settings at the top of $0" ;;
	esac
	case ${2%/} in
	'' | / | /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/* | /var | /var/lib | /var/log)
		fatal "refusing to remove $1 $2: it is a system directory; fix the settings at the top of $0" ;;
	esac
}
checked_dir "the data dir" "$IKS_DATA_DIR"
checked_dir "the configuration dir" "$IKS_CONFIG_DIR"

canon() {
	if [ -d "$1" ]; then (cd "$1" && pwd -P); else printf '%s\n' "${1%/}"; fi
}
DATA_REAL=$(canon "$IKS_DATA_DIR")
checked_dir "the data dir" "$DATA_REAL"
BIN_REAL=$(canon "$IKS_BIN_DIR")/iks
# The program bin/iks carries, extracted beside its bin dir
# (<prefix>/lib/iks/<version>/iks, cmd/iks-launcher).
PROGRAM_DIR=$(dirname "$(canon "$IKS_BIN_DIR")")/lib/iks

created() {
	case " $IKS_CREATED " in *" $1 "*) return 0 ;; esac
	return 1
}

# mounted_under DIR: something is mounted at or below DIR.
mounted_under() {
	awk -v d="$1" '{ mp = $5; gsub(/\\040/, " ", mp); if (mp == d || index(mp, d "/") == 1) { found = 1 } } END { exit !found }' /proc/self/mountinfo
}

# remove_tree NAME DIR: rm -rf DIR unless something is still mounted in it
# (removing through a bind mount would delete the host files behind it).
remove_tree() {
	[ -e "$2" ] || [ -L "$2" ] || return 0
	d=$(canon "$2")
	if mounted_under "$d"; then
		if awk -v d="$d" '{ mp = $5; gsub(/\\040/, " ", mp); if (mp == d) found = 1 } END { exit !found }' /proc/self/mountinfo &&
			! mounted_under_strictly "$d"; then
			# DIR is a file system of its own: empty it, keep the mount point.
			log "$2 is a mount point: removing its contents only"
			find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} + || problem "cannot empty $2"
			return 0
		fi
		problem "not removing $1 $2: file systems are still mounted in it (see: grep $d /proc/self/mountinfo); run $KILLALL, then this script again"
		return 0
	fi
	rm -rf "$2" || problem "cannot remove $1 $2"
}

mounted_under_strictly() {
	awk -v d="$1/" '{ mp = $5; gsub(/\\040/, " ", mp); if (index(mp, d) == 1) { found = 1 } } END { exit !found }' /proc/self/mountinfo
}

# is_iks_link PATH: a symlink to the installed iks binary.
is_iks_link() {
	[ -L "$1" ] || return 1
	t=$(readlink "$1")
	[ "$t" = iks ] || [ "$t" = "$IKS_BIN_DIR/iks" ] || [ "$t" = "$BIN_REAL" ] ||
		[ "$(readlink -f "$1" 2>/dev/null)" = "$BIN_REAL" ]
}

# points_into_data LINK: LINK is a symlink to a file in the data dir.
points_into_data() {
	[ -L "$1" ] || return 1
	t=$(readlink "$1")
	case $t in "$IKS_DATA_DIR"/* | "$DATA_REAL"/*) return 0 ;; esac
	return 1
}

# ---------------------------------------------------------------- stop

SELF_DIR=$(cd "$(dirname "$0")" && pwd)
KILLALL=$IKS_BIN_DIR/iks-killall.sh
[ -f "$KILLALL" ] || KILLALL=$SELF_DIR/iks-killall.sh
if [ -f "$KILLALL" ]; then
	# The same settings, also for a killall run from a checkout.
	IKS_BIN_DIR=$IKS_BIN_DIR IKS_DATA_DIR=$IKS_DATA_DIR IKS_CONFIG_DIR=$IKS_CONFIG_DIR \
		IKS_KUBECONFIG=$IKS_KUBECONFIG IKS_LOG=$IKS_LOG IKS_PIDFILE=$IKS_PIDFILE IKS_SYSTEMD=$IKS_SYSTEMD \
		IKS_SERVICE=$IKS_SERVICE IKS_CGROUP_ROOT=$IKS_CGROUP_ROOT IKS_CREATED=$IKS_CREATED \
		IKS_CREATED_BIN_DIR=$IKS_CREATED_BIN_DIR sh "$KILLALL" ||
		problem "$KILLALL did not stop everything; removing what is safe to remove"
else
	problem "iks-killall.sh not found in $IKS_BIN_DIR or $SELF_DIR: iks may still run; removing what is safe to remove"
fi

# ---------------------------------------------------------------- service

UNIT=/etc/systemd/system/$IKS_SERVICE.service
if [ -f "$UNIT" ] && [ "$IKS_SYSTEMD" != false ]; then
	log "removing $UNIT"
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable "$IKS_SERVICE" >/dev/null 2>&1 || true
	fi
	rm -f "$UNIT"
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload || true
		systemctl reset-failed "$IKS_SERVICE" >/dev/null 2>&1 || true
	fi
fi

# ---------------------------------------------------------------- binaries

for cmd in kubectl crictl ctr; do
	if is_iks_link "$IKS_BIN_DIR/$cmd"; then
		rm -f "$IKS_BIN_DIR/$cmd"
	elif [ -e "$IKS_BIN_DIR/$cmd" ]; then
		log "keeping $IKS_BIN_DIR/$cmd: it is not a link to iks"
	fi
done
rm -f "$IKS_BIN_DIR/iks" "$IKS_BIN_DIR"/.iks.new.*

# ---------------------------------------------------------------- host paths

# /var/log/containers: kubelet's links to the container logs in the data dir.
if [ -d /var/log/containers ]; then
	for f in /var/log/containers/*; do
		if points_into_data "$f"; then rm -f "$f"; fi
	done
fi
# /var/log/pods is not used while the pod logs live in the data dir.
for d in /var/log/containers /var/log/pods; do
	if created "$d" && [ -d "$d" ]; then
		rmdir "$d" 2>/dev/null || warn "keeping $d: it holds files that are not this installation's"
	fi
done

# /var/lib/cni: the CNI result cache; an entry is ours when it names the data dir.
if [ -d /var/lib/cni/results ]; then
	for f in /var/lib/cni/results/*; do
		if [ -f "$f" ] && { grep -q -F "$DATA_REAL/" "$f" || grep -q -F "$IKS_DATA_DIR/" "$f"; }; then rm -f "$f"; fi
	done
fi
if created /var/lib/cni && [ -d /var/lib/cni ]; then
	rmdir /var/lib/cni/results 2>/dev/null || true
	rmdir /var/lib/cni 2>/dev/null || warn "keeping /var/lib/cni: it holds files that are not this installation's"
fi

# /var/lib/kubelet: what the kubelet creates at hard-coded paths
# (device-plugins). Removed only when iks created it.
if created /var/lib/kubelet && [ -d /var/lib/kubelet ]; then
	remove_tree "kubelet's directory" /var/lib/kubelet
fi

if created /run/containerd && [ -d /run/containerd ]; then
	for d in /run/containerd/runc/*/ /run/containerd/runc /run/containerd/s /run/containerd; do
		if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
	done
	[ ! -d /run/containerd ] || warn "keeping /run/containerd: it holds files that are not this installation's (another containerd?)"
fi

# ---------------------------------------------------------------- state

if [ -n "$IKS_KUBECONFIG" ]; then rm -f "$IKS_KUBECONFIG"; fi
remove_tree "the configuration dir" "$IKS_CONFIG_DIR"
log "removing the data dir $IKS_DATA_DIR"
remove_tree "the data dir" "$IKS_DATA_DIR"
rm -f "$IKS_LOG" "$IKS_PIDFILE"
if [ -d "$PROGRAM_DIR" ]; then
	log "removing the extracted program in $PROGRAM_DIR"
	for d in "$PROGRAM_DIR"/*/; do
		[ -f "$d/iks" ] || continue
		rm -f "$d/iks" && rmdir "$d" || problem "cannot remove the extracted program $d"
	done
	rm -f "$PROGRAM_DIR"/.iks-*
	rmdir "$PROGRAM_DIR" 2>/dev/null || warn "keeping $PROGRAM_DIR: it holds files that are not iks's"
fi

# Last: these scripts (the running shell keeps its open copy).
rm -f "$IKS_BIN_DIR/iks-killall.sh" "$IKS_BIN_DIR/iks-uninstall.sh"
if [ "$IKS_CREATED_BIN_DIR" = true ] && [ -d "$IKS_BIN_DIR" ]; then
	rmdir "$IKS_BIN_DIR" 2>/dev/null || true
fi

if [ $FAILED -ne 0 ]; then
	fatal "iks is uninstalled only partly (errors above)"
fi
log "iks is uninstalled"
