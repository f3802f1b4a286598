#!/bin/sh
# iks installer: puts the iks binary, its kubectl/crictl/ctr symlinks and the
# iks-killall.sh / iks-uninstall.sh scripts on this machine, starts
# `iks server` (a systemd service where systemd runs, a background process
# otherwise) and waits until the node is Ready.
#
# Nothing is downloaded, so it works air-gapped. Run it from a checkout:
#
#     sudo ./install.sh                               # builds bin/iks with `make` if missing,
#                                                    # installing what the build and the node
#                                                    # need (scripts/prereqs.sh) with apt-get or dnf
#     sudo sh install.sh -- --node-ip 10.0.0.5        # extra `iks server` flags after --
#     cd iks && cat install.sh | sudo sh -s -- --debug  # piped: the current
#                                                    # directory is the checkout
#     sudo IKS_BINARY=/opt/iks IKS_SOURCE_DIR=/src/iks sh install.sh
#
# Environment (all optional):
#   IKS_BINARY=PATH              install this binary instead of <checkout>/bin/iks
#   IKS_SOURCE_DIR=DIR           checkout to take bin/iks and scripts/ from
#                                (default: the directory of this script, or the
#                                current directory when piped into sh)
#   INSTALL_IKS_EXEC="FLAGS"     extra `iks server` flags (before those after --)
#   IKS_DATA_DIR=DIR             passed as --data-dir (default /var/lib/iks)
#   IKS_KUBECONFIG=PATH          passed as --write-kubeconfig ("" = do not write
#                                one; default /etc/iks/iks.yaml)
#   INSTALL_IKS_BIN_DIR=DIR      where iks, the symlinks and scripts go
#                                (default /usr/local/bin)
#   INSTALL_IKS_CONFIG_DIR=DIR   configuration directory (default /etc/iks; when
#                                changed, iks reads DIR/config.yaml)
#   INSTALL_IKS_SYMLINK=skip|force  skip the kubectl/crictl/ctr symlinks, or
#                                replace existing non-iks files (default: create
#                                them unless a non-iks file of that name exists)
#   INSTALL_IKS_SYSTEMD=auto|true|false  run as a systemd service (default:
#                                when systemd is the init system)
#   INSTALL_IKS_SKIP_START=true  install (and enable the service) but do not start
#   INSTALL_IKS_SKIP_DEPS=true   do not install prerequisites with apt-get/dnf:
#                                stop if a build one is missing, naming each and
#                                the command that installs it (runtime ones are
#                                only named); see scripts/prereqs.sh
#   INSTALL_IKS_LOG=PATH         log of the background process (no systemd;
#                                default /var/log/iks.log)
#   INSTALL_IKS_PIDFILE=PATH     its pid file (default /run/iks.pid)
#   INSTALL_IKS_READY_TIMEOUT=S  seconds to wait for the node to be Ready (120)
set -eu

info() { printf '[iks] %s\n' "$*"; }
warn() { printf '[iks] warning: %s\n' "$*" >&2; }
fatal() {
	printf '[iks] error: %s\n' "$*" >&2
	exit 1
}

# sq VALUE: VALUE quoted for sh.
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# shell_words ARGS...: ARGS as they would be typed in a shell.
shell_words() {
	for w in "$@"; do
		case $w in
		'' | *[!A-Za-z0-9_./:=,@+-]*) printf ' %s' "$(sq "$w")" ;;
		*) printf ' %s' "$w" ;;
		esac
	done
}

# systemd_quote VALUE: VALUE quoted for an ExecStart= line.
systemd_quote() {
	case $1 in
	'' | *[!A-Za-z0-9_./:=,@+-]*)
		printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g' -e 's/%/%%/g')"
		;;
	*) printf '%s' "$1" ;;
	esac
}

is_true() {
	case $1 in
	true | TRUE | True | yes | 1) return 0 ;;
	false | FALSE | False | no | 0 | '') return 1 ;;
	*) fatal "$2=$1 is not valid: use true or false${3:+ (or $3)}" ;;
	esac
}

# abs_path NAME VALUE: VALUE must be an absolute path.
abs_path() {
	case $2 in
	/*) ;;
	*) fatal "$1=$2 must be an absolute path (for example $3)" ;;
	esac
}

# ---------------------------------------------------------------- settings

# Arguments: `--` (from `sh install.sh -- FLAGS`), then `iks server` flags.
# `server` as the first word is accepted for k3s habits.
if [ "${1:-}" = "--" ]; then shift; fi
if [ "${1:-}" = "server" ]; then shift; fi
for a in "$@"; do
	case $a in
	-h | --help)
		sed -n '2,/^set -eu$/p' "$0" 2>/dev/null | sed -e '/^set -eu$/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	esac
done

BIN_DIR=${INSTALL_IKS_BIN_DIR:-/usr/local/bin}
CONFIG_DIR=${INSTALL_IKS_CONFIG_DIR:-/etc/iks}
LOG_FILE=${INSTALL_IKS_LOG:-/var/log/iks.log}
PID_FILE=${INSTALL_IKS_PIDFILE:-/run/iks.pid}
READY_TIMEOUT=${INSTALL_IKS_READY_TIMEOUT:-120}
SYMLINK=${INSTALL_IKS_SYMLINK:-auto}
SERVICE=iks
UNIT_FILE=/etc/systemd/system/$SERVICE.service

abs_path INSTALL_IKS_BIN_DIR "$BIN_DIR" /usr/local/bin
abs_path INSTALL_IKS_CONFIG_DIR "$CONFIG_DIR" /etc/iks
abs_path INSTALL_IKS_LOG "$LOG_FILE" /var/log/iks.log
abs_path INSTALL_IKS_PIDFILE "$PID_FILE" /run/iks.pid
while [ "${CONFIG_DIR%/}" != "$CONFIG_DIR" ] && [ "$CONFIG_DIR" != / ]; do CONFIG_DIR=${CONFIG_DIR%/}; done
case $CONFIG_DIR in
/ | /etc | /usr | /usr/* | /var | /var/lib | /run | /root | /home | /tmp)
	fatal "INSTALL_IKS_CONFIG_DIR=$CONFIG_DIR would make iks-uninstall.sh delete a system directory; use a directory of its own such as /etc/iks" ;;
esac
if [ -n "${IKS_DATA_DIR:-}" ]; then abs_path IKS_DATA_DIR "$IKS_DATA_DIR" /var/lib/iks; fi
case $READY_TIMEOUT in
'' | *[!0-9]*) fatal "INSTALL_IKS_READY_TIMEOUT=$READY_TIMEOUT is not a number of seconds (for example 300)" ;;
esac
case $SYMLINK in
auto | skip | force) ;;
*) fatal "INSTALL_IKS_SYMLINK=$SYMLINK is not one of auto, skip, force" ;;
esac
SKIP_START=false
SKIP_DEPS=false
if is_true "${INSTALL_IKS_SKIP_DEPS:-false}" INSTALL_IKS_SKIP_DEPS; then SKIP_DEPS=true; fi
# sudo's secure_path leaves out Go's usual home.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; export PATH; fi
if is_true "${INSTALL_IKS_SKIP_START:-false}" INSTALL_IKS_SKIP_START; then SKIP_START=true; fi

case ${INSTALL_IKS_SYSTEMD:-auto} in
auto)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then USE_SYSTEMD=true; else USE_SYSTEMD=false; fi
	;;
*)
	if is_true "$INSTALL_IKS_SYSTEMD" INSTALL_IKS_SYSTEMD auto; then
		if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
			fatal "INSTALL_IKS_SYSTEMD=true but systemd is not the init system here; unset it to run iks as a background process"
		fi
		USE_SYSTEMD=true
	else
		USE_SYSTEMD=false
	fi
	;;
esac

# The server flags: what the environment asks for first, then
# INSTALL_IKS_EXEC, then the arguments, so that later flags win.
if [ -n "${INSTALL_IKS_EXEC:-}" ]; then
	set -f
	# shellcheck disable=SC2086 # word splitting of the flag string is meant
	set -- $INSTALL_IKS_EXEC "$@"
	set +f
fi
if [ -n "${IKS_KUBECONFIG+set}" ]; then set -- --write-kubeconfig "$IKS_KUBECONFIG" "$@"; fi
if [ -n "${IKS_DATA_DIR:-}" ]; then set -- --data-dir "$IKS_DATA_DIR" "$@"; fi
if [ "$CONFIG_DIR" != /etc/iks ]; then set -- --config "$CONFIG_DIR/config.yaml" "$@"; fi

# What the flags (and the config file) make of the paths the scripts need.
DATA_DIR=/var/lib/iks
KUBECONFIG_OUT=/etc/iks/iks.yaml
CGROUP_ROOT=/
NODE_NAME=
CONFIG_FILE=/etc/iks/config.yaml

# config_value KEY: the value of a top-level scalar KEY in the config file.
config_value() {
	[ -f "$CONFIG_FILE" ] || return 0
	sed -n "s/^$1:[[:space:]]*//p" "$CONFIG_FILE" | tail -n 1 |
		sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

# First pass: the config file named by the flags.
prev=
for a in "$@"; do
	case $prev in -c | --config) CONFIG_FILE=$a ;; esac
	case $a in --config=*) CONFIG_FILE=${a#--config=} ;; esac
	prev=$a
done
v=$(config_value data-dir) && [ -n "$v" ] && DATA_DIR=$v
v=$(config_value cgroup-root) && [ -n "$v" ] && CGROUP_ROOT=$v
v=$(config_value node-name) && [ -n "$v" ] && NODE_NAME=$v
if [ -f "$CONFIG_FILE" ] && grep -q '^write-kubeconfig:' "$CONFIG_FILE"; then KUBECONFIG_OUT=$(config_value write-kubeconfig); fi
# Second pass: flags win over the file.
prev=
for a in "$@"; do
	case $prev in
	-d | --data-dir) DATA_DIR=$a ;;
	--write-kubeconfig) KUBECONFIG_OUT=$a ;;
	--cgroup-root) CGROUP_ROOT=$a ;;
	--node-name) NODE_NAME=$a ;;
	esac
	case $a in
	--data-dir=*) DATA_DIR=${a#--data-dir=} ;;
	--write-kubeconfig=*) KUBECONFIG_OUT=${a#--write-kubeconfig=} ;;
	--cgroup-root=*) CGROUP_ROOT=${a#--cgroup-root=} ;;
	--node-name=*) NODE_NAME=${a#--node-name=} ;;
	esac
	prev=$a
done
abs_path "--data-dir" "$DATA_DIR" /var/lib/iks
while [ "${DATA_DIR%/}" != "$DATA_DIR" ] && [ "$DATA_DIR" != / ]; do DATA_DIR=${DATA_DIR%/}; done
[ -n "$NODE_NAME" ] || NODE_NAME=$(uname -n | tr '[:upper:]' '[:lower:]') # the default of iks
[ -z "$KUBECONFIG_OUT" ] || abs_path "--write-kubeconfig" "$KUBECONFIG_OUT" /etc/iks/iks.yaml
case $DATA_DIR in
/ | /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/* | /var | /var/lib | /var/log)
	fatal "--data-dir $DATA_DIR would make iks-uninstall.sh delete a system directory; use a directory of its own such as /var/lib/iks" ;;
esac

[ "$(id -u)" -eq 0 ] || fatal "install.sh must run as root: it installs into $BIN_DIR and starts iks, which manages containers, cgroups and the network (try: sudo ./install.sh)"

# ---------------------------------------------------------------- sources

if [ -n "${IKS_SOURCE_DIR:-}" ]; then
	SRC_DIR=$IKS_SOURCE_DIR
	[ -d "$SRC_DIR" ] || fatal "IKS_SOURCE_DIR=$SRC_DIR is not a directory; point it at an iks checkout"
else
	case $0 in
	*install.sh) SRC_DIR=$(cd "$(dirname "$0")" && pwd) ;;
	*) SRC_DIR=$(pwd) ;; # piped into sh
	esac
fi

# prereqs GROUP: installs the missing GROUP (build, runtime) prerequisites
# with scripts/prereqs.sh, the list .ci/run and make use too; with
# INSTALL_IKS_SKIP_DEPS=true only names them (and stops for build ones).
PREREQS=$SRC_DIR/scripts/prereqs.sh
prereqs() {
	[ -f "$PREREQS" ] || fatal "$PREREQS not found; run install.sh from an iks checkout or set IKS_SOURCE_DIR=/path/to/checkout"
	command -v bash >/dev/null 2>&1 || fatal "bash is needed to check the $1 prerequisites ($PREREQS); install bash"
	if [ "$SKIP_DEPS" = true ]; then
		if ! bash "$PREREQS" check "$1"; then
			[ "$1" = runtime ] || fatal "missing $1 prerequisites (listed above with the command that installs each); install them, or unset INSTALL_IKS_SKIP_DEPS to let install.sh install them"
			warn "missing $1 prerequisites (listed above); iks falls back where it can, see: iks check-config"
		fi
	elif ! bash "$PREREQS" install "$1"; then
		fatal "could not install the $1 prerequisites (see above); install them by hand (\`bash $PREREQS check $1\` lists them), or set INSTALL_IKS_SKIP_DEPS=true to skip"
	fi
}

if [ -n "${IKS_BINARY:-}" ]; then
	if [ ! -f "$IKS_BINARY" ] || [ ! -x "$IKS_BINARY" ]; then
		fatal "IKS_BINARY=$IKS_BINARY is not an executable file; build one with \`make\` (bin/iks) or fix the path"
	fi
	BINARY=$IKS_BINARY
elif [ -x "$SRC_DIR/bin/iks" ]; then
	BINARY=$SRC_DIR/bin/iks
elif [ -f "$SRC_DIR/Makefile" ] && [ -f "$SRC_DIR/go.mod" ]; then
	info "$SRC_DIR/bin/iks is missing: building it"
	prereqs build
	info "building $SRC_DIR/bin/iks with make (the first build takes 10-20 minutes on 2 cores)"
	make -C "$SRC_DIR" || fatal "make failed in $SRC_DIR; fix the build or set IKS_BINARY=/path/to/iks"
	[ -x "$SRC_DIR/bin/iks" ] || fatal "make did not produce $SRC_DIR/bin/iks"
	BINARY=$SRC_DIR/bin/iks
else
	fatal "no iks binary: $SRC_DIR is not an iks checkout (no bin/iks, no Makefile); run install.sh from a checkout, set IKS_SOURCE_DIR=/path/to/checkout, or set IKS_BINARY=/path/to/iks"
fi
"$BINARY" --help >/dev/null 2>&1 || fatal "$BINARY does not run on this machine (\`$BINARY --help\` failed); is it built for $(uname -m) Linux?"

prereqs runtime

for s in iks-killall.sh iks-uninstall.sh; do
	[ -f "$SRC_DIR/scripts/$s" ] ||
		fatal "$SRC_DIR/scripts/$s not found; run install.sh from an iks checkout or set IKS_SOURCE_DIR=/path/to/checkout"
done

# ---------------------------------------------------------------- install

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/iks-install.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

# Host paths iks (or the kubelet and containerd it runs) create when absent:
# the uninstaller removes those that were not here before the first install.
CANDIDATES="/var/lib/kubelet /var/lib/cni /var/log/containers /var/log/pods /run/containerd"
PREV_CREATED=
PREV_CREATED_BIN_DIR=false
if [ -f "$BIN_DIR/iks-uninstall.sh" ]; then
	PREV_CREATED=$(sed -n "s/^IKS_CREATED='\(.*\)'\$/\1/p" "$BIN_DIR/iks-uninstall.sh" | head -n 1)
	PREV_CREATED_BIN_DIR=$(sed -n "s/^IKS_CREATED_BIN_DIR='\(.*\)'\$/\1/p" "$BIN_DIR/iks-uninstall.sh" | head -n 1)
fi
CREATED=
for p in $CANDIDATES; do
	if [ ! -e "$p" ]; then
		CREATED="$CREATED $p"
	else
		case " $PREV_CREATED " in *" $p "*) CREATED="$CREATED $p" ;; esac
	fi
done
CREATED=${CREATED# }
CREATED_BIN_DIR=false
if [ ! -d "$BIN_DIR" ] || [ "$PREV_CREATED_BIN_DIR" = true ]; then CREATED_BIN_DIR=true; fi

mkdir -p "$BIN_DIR" || fatal "cannot create $BIN_DIR; set INSTALL_IKS_BIN_DIR to a writable directory"
if [ -f "$BIN_DIR/iks" ] && cmp -s "$BINARY" "$BIN_DIR/iks"; then
	info "$BIN_DIR/iks is up to date"
else
	info "installing $BINARY to $BIN_DIR/iks"
	# A new inode, renamed into place: a running iks keeps its old binary.
	if ! { cp "$BINARY" "$BIN_DIR/.iks.new.$$" && chmod 0755 "$BIN_DIR/.iks.new.$$" && mv -f "$BIN_DIR/.iks.new.$$" "$BIN_DIR/iks"; }; then
		rm -f "$BIN_DIR/.iks.new.$$"
		fatal "cannot install $BIN_DIR/iks; is $BIN_DIR writable and is there space left?"
	fi
fi
BIN_REAL=$(cd "$BIN_DIR" && pwd -P)/iks

# is_iks_link PATH: PATH is a symlink to the installed iks binary.
is_iks_link() {
	[ -L "$1" ] || return 1
	t=$(readlink "$1")
	[ "$t" = iks ] || [ "$t" = "$BIN_DIR/iks" ] || [ "$(readlink -f "$1" 2>/dev/null)" = "$BIN_REAL" ]
}

for cmd in kubectl crictl ctr; do
	link=$BIN_DIR/$cmd
	if [ "$SYMLINK" = skip ]; then
		info "not linking $link (INSTALL_IKS_SYMLINK=skip); use: iks $cmd"
	elif is_iks_link "$link"; then
		ln -sf iks "$link"
	elif [ -e "$link" ] || [ -L "$link" ]; then
		if [ "$SYMLINK" = force ]; then
			warn "replacing $link with a link to iks (INSTALL_IKS_SYMLINK=force)"
			rm -f "$link" && ln -s iks "$link"
		else
			warn "skipping $link: it exists and is not iks; use \`iks $cmd\`, or set INSTALL_IKS_SYMLINK=force to replace it"
		fi
	else
		info "linking $link -> iks"
		ln -s iks "$link"
	fi
done

# The settings block baked into iks-killall.sh and iks-uninstall.sh.
SYSTEMD_SETTING=$USE_SYSTEMD
{
	printf '# BEGIN IKS INSTALL SETTINGS (written by install.sh on %s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'IKS_BIN_DIR=%s\n' "$(sq "$BIN_DIR")"
	printf 'IKS_DATA_DIR=%s\n' "$(sq "$DATA_DIR")"
	printf 'IKS_CONFIG_DIR=%s\n' "$(sq "$CONFIG_DIR")"
	printf 'IKS_KUBECONFIG=%s\n' "$(sq "$KUBECONFIG_OUT")"
	printf 'IKS_LOG=%s\n' "$(sq "$LOG_FILE")"
	printf 'IKS_PIDFILE=%s\n' "$(sq "$PID_FILE")"
	printf 'IKS_SYSTEMD=%s\n' "$(sq "$SYSTEMD_SETTING")"
	printf 'IKS_SERVICE=%s\n' "$(sq "$SERVICE")"
	printf 'IKS_CGROUP_ROOT=%s\n' "$(sq "$CGROUP_ROOT")"
	printf 'IKS_CREATED=%s\n' "$(sq "$CREATED")"
	printf 'IKS_CREATED_BIN_DIR=%s\n' "$(sq "$CREATED_BIN_DIR")"
	printf '# END IKS INSTALL SETTINGS\n'
} >"$TMP_DIR/settings"

for s in iks-killall.sh iks-uninstall.sh; do
	awk -v settings="$TMP_DIR/settings" '
		/^# BEGIN IKS INSTALL SETTINGS/ {
			while ((getline line < settings) > 0) print line
			skip = 1; found = 1; next
		}
		/^# END IKS INSTALL SETTINGS/ { skip = 0; next }
		!skip { print }
		END { if (!found) exit 3 }
	' "$SRC_DIR/scripts/$s" >"$TMP_DIR/$s" ||
		fatal "$SRC_DIR/scripts/$s has no \"# BEGIN IKS INSTALL SETTINGS\" block; use the scripts of the same checkout as install.sh"
	chmod 0755 "$TMP_DIR/$s"
	mv -f "$TMP_DIR/$s" "$BIN_DIR/$s" || fatal "cannot install $BIN_DIR/$s"
done
info "installed $BIN_DIR/iks-killall.sh and $BIN_DIR/iks-uninstall.sh"

if [ "$CONFIG_DIR" != /etc/iks ] && [ ! -e "$CONFIG_DIR/config.yaml" ]; then
	mkdir -p "$CONFIG_DIR"
	echo '# iks server configuration: its keys are the flag names that "iks server --help" lists.' >"$CONFIG_DIR/config.yaml"
fi

# ---------------------------------------------------------------- start

# pid_is_iks PID: PID runs the installed binary (possibly replaced since).
pid_is_iks() {
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	# The installed binary is a launcher: it execs the program it
	# extracted to <prefix>/lib/iks/<version>/iks (same PID).
	case $exe in
	"$BIN_REAL" | "$BIN_REAL (deleted)" | "$(dirname "$(dirname "$BIN_REAL")")/lib/iks/"*) return 0 ;;
	esac
	return 1
}

# stop_background: stops a server this installer started before (pid file).
stop_background() {
	[ -f "$PID_FILE" ] || return 0
	pid=$(cat "$PID_FILE" 2>/dev/null || true)
	case $pid in '' | *[!0-9]*) rm -f "$PID_FILE"; return 0 ;; esac
	if pid_is_iks "$pid"; then
		info "stopping the running iks server (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while [ -d "/proc/$pid" ] && pid_is_iks "$pid" && [ $i -lt 300 ]; do
			sleep 0.1 2>/dev/null || sleep 1
			i=$((i + 1))
		done
		if [ -d "/proc/$pid" ] && pid_is_iks "$pid"; then
			warn "iks server (pid $pid) did not stop within 30s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$PID_FILE"
}

if [ "$USE_SYSTEMD" = true ]; then
	EXEC_LINE=$(systemd_quote "$BIN_DIR/iks")' server'
	for a in "$@"; do EXEC_LINE="$EXEC_LINE $(systemd_quote "$a")"; done
	info "writing $UNIT_FILE"
	cat >"$TMP_DIR/unit" <<EOF
[Unit]
Description=iks: IBM Cloud Kubernetes Service in a box
Wants=network-online.target
After=network-online.target

[Service]
# Type=notify is not supported by iks yet.
Type=simple
# Only the server is stopped: containerd shims and pods keep running, so
# pods survive a restart. iks-killall.sh stops everything.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$EXEC_LINE

[Install]
WantedBy=multi-user.target
EOF
	mv -f "$TMP_DIR/unit" "$UNIT_FILE"
	chmod 0644 "$UNIT_FILE"
	stop_background # one started by an earlier install without systemd
	systemctl daemon-reload
	systemctl enable "$SERVICE" >/dev/null 2>&1 || fatal "systemctl enable $SERVICE failed"
	if [ "$SKIP_START" = true ]; then
		info "service $SERVICE enabled, not started (INSTALL_IKS_SKIP_START); start it with: systemctl start $SERVICE"
		exit 0
	fi
	info "starting $SERVICE.service"
	systemctl restart "$SERVICE" || fatal "systemctl restart $SERVICE failed; see: journalctl -u $SERVICE"
	STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ) # the old server is gone, the new one not up yet
	LOGS_HINT="journalctl -u $SERVICE -f"
else
	if [ "$SKIP_START" = true ]; then
		info "not starting iks (INSTALL_IKS_SKIP_START); start it with:$(shell_words "$BIN_DIR/iks" server "$@")"
		exit 0
	fi
	stop_background
	STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	mkdir -p "$(dirname "$LOG_FILE")" "$(dirname "$PID_FILE")"
	printf '===== %s install.sh starts:%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(shell_words "$BIN_DIR/iks" server "$@")" >>"$LOG_FILE"
	# setsid: out of this shell's session, so a hang-up or ^C here does not
	# reach it. In a non-interactive shell the background job is not a
	# process group leader, so setsid does not fork and $! is iks itself.
	if command -v setsid >/dev/null 2>&1; then
		nohup setsid "$BIN_DIR/iks" server "$@" </dev/null >>"$LOG_FILE" 2>&1 &
	else
		nohup "$BIN_DIR/iks" server "$@" </dev/null >>"$LOG_FILE" 2>&1 &
	fi
	SERVER_PID=$!
	printf '%s\n' "$SERVER_PID" >"$PID_FILE"
	i=0
	while ! pid_is_iks "$SERVER_PID"; do
		[ -d "/proc/$SERVER_PID" ] || break
		[ $i -lt 50 ] || break
		sleep 0.1 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	info "started iks server (pid $SERVER_PID), logging to $LOG_FILE"
	LOGS_HINT="tail -f $LOG_FILE"
fi

# ---------------------------------------------------------------- wait

if [ -n "$KUBECONFIG_OUT" ]; then ADMIN_KUBECONFIG=$KUBECONFIG_OUT; else ADMIN_KUBECONFIG=$DATA_DIR/server/cred/admin.kubeconfig; fi

server_alive() {
	if [ "$USE_SYSTEMD" = true ]; then
		if systemctl is-failed --quiet "$SERVICE"; then return 1; fi
	else
		pid_is_iks "$SERVER_PID"
	fi
}

show_log() {
	if [ "$USE_SYSTEMD" = true ]; then
		journalctl -u "$SERVICE" -n 40 --no-pager >&2 || true
	else
		tail -n 40 "$LOG_FILE" >&2 || true
	fi
}

# node_ready: the node (NODE_NAME, or any when not named) reports Ready,
# with a heartbeat from after this start: a node object left Ready by a
# server that was just restarted does not count; and pods can be created
# (the default ServiceAccount exists), as when the server logs its node
# Ready.
node_ready() {
	[ -f "$ADMIN_KUBECONFIG" ] || return 1
	KUBECONFIG=$ADMIN_KUBECONFIG IKS_DATA_DIR=$DATA_DIR "$BIN_DIR/iks" kubectl -n default get serviceaccount default >/dev/null 2>&1 || return 1
	nodes=$(KUBECONFIG=$ADMIN_KUBECONFIG IKS_DATA_DIR=$DATA_DIR "$BIN_DIR/iks" kubectl get nodes -o \
		'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}{"\n"}{end}' \
		2>/dev/null) || return 1
	printf '%s\n' "$nodes" | awk -v name="$NODE_NAME" -v since="$STARTED_AT" '
		(name == "" || $1 == name) && $2 == "True" && $3 > since { found = 1 }
		END { exit !found }'
}

info "waiting up to ${READY_TIMEOUT}s for the node to be Ready"
start=$(date +%s)
while ! node_ready; do
	if ! server_alive; then
		show_log
		fatal "iks server exited during start-up (log above); fix the cause and run install.sh again"
	fi
	if [ $(($(date +%s) - start)) -ge "$READY_TIMEOUT" ]; then
		show_log
		fatal "the node was not Ready within ${READY_TIMEOUT}s (log above); raise INSTALL_IKS_READY_TIMEOUT or follow: $LOGS_HINT"
	fi
	sleep 1
done

info "iks is running and the node is Ready ($(($(date +%s) - start))s)"
KUBECTL=kubectl
is_iks_link "$BIN_DIR/kubectl" || KUBECTL="iks kubectl"
ENV_HINT=
if [ "$ADMIN_KUBECONFIG" != /etc/iks/iks.yaml ]; then ENV_HINT="KUBECONFIG=$ADMIN_KUBECONFIG "; fi
if [ "$DATA_DIR" != /var/lib/iks ]; then ENV_HINT="${ENV_HINT}IKS_DATA_DIR=$DATA_DIR "; fi
cat <<EOF

  Use the cluster:   ${ENV_HINT}$KUBECTL get nodes
                     (admin kubeconfig: $ADMIN_KUBECONFIG, e.g. export KUBECONFIG=$ADMIN_KUBECONFIG)
  Follow the logs:   $LOGS_HINT
  Stop everything:   $BIN_DIR/iks-killall.sh
  Uninstall:         $BIN_DIR/iks-uninstall.sh

EOF
