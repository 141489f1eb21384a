#!/usr/bin/env bash
# hack/engines/rootless-podman.sh: a runtime under rootless podman, end to end (issue 12).
#
#   hack/engines/rootless-podman.sh [--runtime PATH] [--user NAME] [--only REGEX] [--keep]
#                                   [--no-install]
#
# As root. Makes (once) an unprivileged test user with /etc/subuid and /etc/subgid ranges, and
# runs podman as that user, with all of podman's config, storage and XDG_RUNTIME_DIR in a
# scratch directory that is removed at the end. The image is built here from /bin/busybox
# (hack/mkbundle.sh's rootfs, `podman import`); every run has --pull=never and no network.
#
#   --runtime PATH   the runtime under test (default: $HUTCH, else target/x86_64-unknown-linux-gnu/release/hutch).
#                    `--runtime /usr/sbin/runc` proves the script itself.
#   --user NAME      the test user (default hutch-podman); created if missing, and left in place.
#   --only REGEX     run only the checks whose name matches.
#   --keep           keep the scratch directory (podman's logs, the runtime's calls).
#   --no-install     do not apt-get anything; skip if a tool is missing.
#
# Prints "ok|FAIL|skip rootless-podman <check>" per check and ends with "N passed, M failed[, K
# skipped]"; a missing outside tool (podman, conmon, newuidmap, unprivileged user namespaces) is a
# skip, not a failure. Exit status: 0 only when nothing failed.
#
# Host notes (see hack/engines/README.md): storage is native overlay (kernel >= 5.13 mounts
# overlay in a user namespace; no fuse-overlayfs needed, and it is what a rootless user gets by
# default); no network namespace is configured (netns "none": no slirp4netns, no traffic);
# cgroup_manager is cgroupfs and events go to a file (no systemd, no session bus); the hard NOFILE
# limit here is 20000 without CAP_SYS_RESOURCE, so default_ulimits asks for no more.
# `podman pause` is not checked: podman refuses it for rootless containers on cgroup v1 (there is
# no freezer cgroup the user may write). `podman top` reads /proc and needs no cgroup: checked.
# The single-quoted $(...) below run in containers or under eval, on purpose.
# shellcheck disable=SC2016
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

RUNTIME=${HUTCH:-$repo/target/x86_64-unknown-linux-gnu/release/hutch}
TUSER=hutch-podman
ONLY=
KEEP=0
INSTALL=1
while [ $# -gt 0 ]; do
    case $1 in
        --runtime) RUNTIME=$2; shift 2 ;;
        --runtime=*) RUNTIME=${1#*=}; shift ;;
        --user) TUSER=$2; shift 2 ;;
        --user=*) TUSER=${1#*=}; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "rootless-podman.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

E=rootless-podman
die() { echo "rootless-podman.sh: $*" >&2; exit 1; }
skip_all() { echo "skip $E all: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
[ "$(id -u)" = 0 ] || die "must run as root (it makes the test user, then runs podman as that user)"
case $RUNTIME in /*) ;; *) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;; esac
[ -x "$RUNTIME" ] || die "runtime $RUNTIME is not an executable (build it: cargo build --release)"
RTNAME=$(basename "$RUNTIME")

# --- packages and what the kernel must allow ------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want podman podman
want conmon conmon
want newuidmap uidmap
want newgidmap uidmap
want setpriv util-linux
want useradd passwd
want flock util-linux
want script bsdutils
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
    [ $INSTALL = 1 ] || skip_all "missing packages (--no-install): ${need[*]}"
    # shellcheck source=hack/apt-install.sh
    . "$here/../apt-install.sh"
    apt_install /tmp/hutch-rootless-podman-apt.log "${need[@]}" >&2 ||
        skip_all "apt-get install ${need[*]} failed (log: /tmp/hutch-rootless-podman-apt.log)"
fi
[ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" -gt 0 ] ||
    skip_all "user namespaces are disabled (user.max_user_namespaces = 0)"
[ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" = 1 ] ||
    skip_all "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"

# One run at a time: the test user, its pause process and its ids are shared.
exec 9>/run/hutch-rootless-podman.lock
flock -w 300 9 || die "another rootless-podman.sh still runs after 300s (/run/hutch-rootless-podman.lock)"

# --- the test user ----------------------------------------------------------------------------
if ! id -u "$TUSER" >/dev/null 2>&1; then
    # No home: everything podman writes goes to the scratch dir (HOME and XDG_* point there).
    useradd --no-create-home --shell /usr/sbin/nologin --comment "hutch rootless podman e2e" "$TUSER" ||
        die "useradd $TUSER failed"
fi
TUID=$(id -u "$TUSER") TGID=$(id -g "$TUSER")
[ "$TUID" != 0 ] || die "user $TUSER is root"
# subid_range FILE → "START COUNT" of the user's first range (by name or by uid)
subid_range() { awk -F: -v n="$TUSER" -v u="$TUID" '($1 == n || $1 == u) && $3 >= 65536 { print $2, $3; exit }' "$1"; }
# Debian's useradd allocates the ranges; an older user, or another useradd, may have none.
if [ -z "$(subid_range /etc/subuid)" ] || [ -z "$(subid_range /etc/subgid)" ]; then
    # The first 65536 ids past every range in either file.
    start=$(awk -F: 'BEGIN { m = 100000 } NF >= 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' /etc/subuid /etc/subgid)
    [ -n "$(subid_range /etc/subuid)" ] || usermod --add-subuids "$start-$((start + 65535))" "$TUSER" ||
        die "usermod --add-subuids for $TUSER failed"
    [ -n "$(subid_range /etc/subgid)" ] || usermod --add-subgids "$start-$((start + 65535))" "$TUSER" ||
        die "usermod --add-subgids for $TUSER failed"
fi
read -r SUBUID SUBUID_N < <(subid_range /etc/subuid)
read -r SUBGID SUBGID_N < <(subid_range /etc/subgid)

# --- scratch dir, cleanup ---------------------------------------------------------------------
S=$(mktemp -d /tmp/hutch-rootless-podman.XXXXXX)
mkdir -p "$S/home" "$S/xdg" "$S/config" "$S/data" "$S/tmp" "$S/net" "$S/storage" "$S/rt/bin" "$S/share"
: >"$S/runtime-calls.log"
chown -R "$TUID:$TGID" "$S"
chmod 700 "$S/xdg"
chmod 711 "$S"
# The container's uid 1000 writes into the shared dir too (it is a subuid outside).
chmod 777 "$S/share"
PASS=0 FAILN=0 SKIPN=0
FAILED_NAMES=()

# user_pids → pids of every process that runs as the test user or one of its subuids
user_pids() {
    awk -v u="$TUID" -v s="$SUBUID" -v n="$SUBUID_N" '
        FNR == 1 { pid = FILENAME; sub("/proc/", "", pid); sub("/status", "", pid) }
        $1 == "State:" { zombie = ($2 == "Z") }
        $1 == "Uid:" && !zombie && ($2 == u || ($2 >= s && $2 < s + n)) { print pid }' /proc/[0-9]*/status 2>/dev/null
}
pause_pid() { # the podman pause process that holds the user's namespaces, if it runs
    local p; p=$(cat "$S/tmp/pause.pid" 2>/dev/null)
    [ -n "$p" ] && [ "$(awk '$1 == "Uid:" { print $2 }' "/proc/$p/status" 2>/dev/null)" = "$TUID" ] && echo "$p"
}
mounts_under_S() { awk -v s="$S" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo; }

# stop_user_procs: end the pause process, then what still runs as the user or a subuid (after
# the last check, nothing should); all by pid. The lock keeps other runs of this script out, so
# every process of the test user is this run's.
stop_user_procs() {
    local p
    p=$(pause_pid)
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    wait_for 5 eval '[ -z "$(user_pids)" ]' && return 0
    for p in $(user_pids); do kill -KILL "$p" 2>/dev/null; done
    return 1
}
cleanup() {
    local rc=$?
    set +e
    cd /
    [ -n "${PODMAN_READY:-}" ] && timeout 60 pm rm -af -t 0 >/dev/null 2>&1
    stop_user_procs
    mounts_under_S | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ $KEEP = 1 ]; then echo "kept $S"; else rm -rf "$S"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the runtime podman calls: a copy the user can reach, behind an argv-logging wrapper ----------
# The runtime is copied: the user may not traverse to the repo (CI clones under /root). The
# wrapper has the runtime's name, because podman keys some behaviour on it.
cp "$RUNTIME" "$S/rt/bin/$RTNAME" || die "cp $RUNTIME"
chmod 755 "$S/rt/bin/$RTNAME"
ENGINE_RT=$S/rt/$RTNAME
cat >"$ENGINE_RT" <<EOF
#!/bin/sh
printf '%s\n' "[\$\$ euid=\$(/usr/bin/id -u) XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR-unset}] \$*" >>$S/runtime-calls.log
exec $S/rt/bin/$RTNAME "\$@"
EOF
chmod 755 "$ENGINE_RT"
chown -R "$TUID:$TGID" "$S/rt" "$S/runtime-calls.log"

# --- podman's config for the user ---------------------------------------------------------------
HARD_NOFILE=$(ulimit -Hn) HARD_NPROC=$(ulimit -Hu)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
[ "$HARD_NPROC" = unlimited ] && HARD_NPROC=32768
cat >"$S/config/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
# No CAP_SYS_RESOURCE here and a hard NOFILE of $HARD_NOFILE: a rootless user cannot raise it.
default_ulimits = ["nofile=$HARD_NOFILE:$HARD_NOFILE"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$S/tmp"
runtime = "$RTNAME"

[engine.runtimes]
$RTNAME = ["$ENGINE_RT"]

[network]
network_config_dir = "$S/net"
EOF
cat >"$S/config/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$S/xdg/containers"
# graphroot is for root; a rootless user's storage is here (default: \$XDG_DATA_HOME/containers).
rootless_storage_path = "$S/storage"
EOF
echo 'unqualified-search-registries = []' >"$S/config/registries.conf"
chown -R "$TUID:$TGID" "$S/config"

# AS_USER CMD...: CMD as the test user, with a clean environment that points into $S
AS_USER=(env -i "HOME=$S/home" "USER=$TUSER" "LOGNAME=$TUSER"
         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
         "XDG_RUNTIME_DIR=$S/xdg" "XDG_CONFIG_HOME=$S/config" "XDG_DATA_HOME=$S/data"
         "CONTAINERS_CONF=$S/config/containers.conf" "CONTAINERS_STORAGE_CONF=$S/config/storage.conf"
         "CONTAINERS_REGISTRIES_CONF=$S/config/registries.conf"
         setpriv --reuid="$TUID" --regid="$TGID" --init-groups --inh-caps=-all --)
PODMAN=(podman --runtime "$ENGINE_RT" --cgroup-manager cgroupfs --events-backend file)
# (fd 9, the lock, is not handed to podman: its pause process would hold the lock past the run.)
pm() { (cd "$S" && "${AS_USER[@]}" "${PODMAN[@]}" "$@") 9>&-; }

# --- helpers --------------------------------------------------------------------------------
OUT=$S/out
MSG=() CUR_NAMES=()
note() { MSG+=("$*"); }
# run CMD...: a command (60s at most), output in $OUT (appended to the check's log), rc in $RC
run() {
    local cmd=("$@")
    [ "$1" = pm ] && cmd=("${AS_USER[@]}" "${PODMAN[@]}" "${@:2}")
    (cd "$S" && timeout -k 5 60 "${cmd[@]}") >"$OUT" 2>&1 </dev/null 9>&-
    RC=$?
    { echo "\$ $*"; cat "$OUT"; echo "[rc=$RC]"; } >>"$S/check.log"
    return $RC
}
out() { tr -d '\r\0' <"$OUT"; }
expect_rc() { [ "$RC" = "$1" ] || { note "expected exit code $1, got $RC: $(out | tail -5)"; return 1; }; }
expect_out() { out | grep -qE -- "$1" || { note "expected output matching '$1', got: $(out | tail -5)"; return 1; }; }
wait_for() {
    local _wf_n=$(($1 * 5)); shift
    while ((_wf_n-- > 0)); do "$@" && return 0; sleep 0.2; done
    return 1
}
newname() { echo "rl-$1-$RANDOM$RANDOM"; }
# fg OPTS... -- CMD...: `podman run --rm` in the foreground; output in $OUT, exit status in $RC
fg() {
    local n opts=() rc
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    n=$(newname fg)
    rm -f "$S/cid"
    run pm run --rm --pull=never --cidfile "$S/cid" --name "$n" "${opts[@]}" "$IMG" "$@"
    rc=$RC
    add_container "$n" "$(cat "$S/cid" 2>/dev/null)"
    RC=$rc
}
cstate() { pm inspect -f "{{.State.$2}}" "$1" 2>/dev/null; }

# Things a check must not leave: the container in podman's list, its runtime state dir, a
# process of the user other than the pause process, a mount under the scratch dir on the host.
leftovers() {
    local n=$1 found=() p pause
    pm ps -a --format '{{.Names}}' 2>/dev/null | grep -qx "$n" && found+=("podman still lists $n")
    [ -n "${IDS[$n]:-}" ] && [ -e "$S/xdg/$RTNAME/${IDS[$n]}" ] && found+=("runtime state $S/xdg/$RTNAME/${IDS[$n]}")
    pause=$(pause_pid)
    for p in $(user_pids); do
        [ "$p" = "$pause" ] || found+=("process $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
    done
    while read -r p; do found+=("host mount $p"); done < <(mounts_under_S)
    [ ${#found[@]} -eq 0 ] && return 0
    LEFT=("${found[@]}")
    return 1
}
declare -A IDS
add_container() { CUR_NAMES+=("$1"); IDS[$1]=${2:-}; }

check() {
    local name=$1 fn=$2 ok t0=$SECONDS calls0 n
    if [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]]; then return; fi
    MSG=() CUR_NAMES=()
    : >"$S/check.log"
    calls0=$(wc -l <"$S/runtime-calls.log")
    "$fn"
    ok=$?
    for n in "${CUR_NAMES[@]}"; do pm rm -f -t 0 "$n" >/dev/null 2>&1; done
    for n in "${CUR_NAMES[@]}"; do
        LEFT=()
        wait_for 10 leftovers "$n" || { note "left behind by $n: $(printf '%s; ' "${LEFT[@]}")"; ok=1; }
    done
    if [ $ok = 0 ]; then
        echo "ok   $E $name ($((SECONDS - t0))s)"; PASS=$((PASS + 1))
    else
        echo "FAIL $E $name ($((SECONDS - t0))s)"; FAILN=$((FAILN + 1)); FAILED_NAMES+=("$E/$name")
        printf '    %s\n' "${MSG[@]}"
        echo "    --- podman commands and output:"; sed 's/^/    | /' "$S/check.log" | tail -60
        echo "    --- runtime calls during the check:"
        tail -n +"$((calls0 + 1))" "$S/runtime-calls.log" | sed 's/^/    | /' | tail -40
    fi
}

# --- the image --------------------------------------------------------------------------------
IMG=localhost/hutch-rootless/busybox:latest
build_image() {
    NO_CONFIG=1 "$repo/hack/mkbundle.sh" "$S/image" >/dev/null || die "mkbundle failed"
    tar --numeric-owner -C "$S/image/rootfs" -cf "$S/image/rootfs.tar" . || die "tar failed"
    chown "$TUID:$TGID" "$S/image/rootfs.tar"
}

# --- checks -----------------------------------------------------------------------------------
c_import() {
    run pm import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["sh"]' "$S/image/rootfs.tar" "$IMG" || { note "podman import failed: $(out | tail -5)"; return 1; }
    PODMAN_READY=1
    run pm images --format '{{.Repository}}:{{.Tag}}'
    expect_out "^${IMG}\$"
}
# The container runs, its output comes back, and podman is really rootless (a user namespace).
c_run_output() {
    fg -- sh -c 'echo hello-$((6*7)); echo to-stderr >&2; exit 3'
    expect_rc 3 && expect_out '^hello-42$' && expect_out '^to-stderr$'
}
# Podman's default rootless mapping: container root is the user, 1..65536 its subuid range.
c_uid_map() {
    fg -- sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u'
    expect_rc 0 || return 1
    local maps; maps=$(out | awk 'NF == 3 { print $1, $2, $3 }' | tr '\n' ',')
    local want="0 $TUID 1,1 $SUBUID $SUBUID_N,0 $TGID 1,1 $SUBGID $SUBGID_N,"
    [ "$maps" = "$want" ] || { note "uid_map,gid_map inside: '$maps', expected '$want'"; return 1; }
    expect_out '^0$'
}
# --userns=keep-id: the user's own uid inside.
c_keep_id() {
    fg --userns=keep-id -- sh -c 'echo uid=$(id -u) gid=$(id -g)'
    expect_rc 0 && expect_out "^uid=$TUID gid=$TGID\$"
}
# Files written into a bind-mounted dir of the user's: container root is the user outside, and
# the container's uid 1000 is subuid+999.
c_bind_owner() {
    rm -f "$S/share"/*
    fg -v "$S/share:/mnt" -- sh -c 'echo x >/mnt/by-root'
    expect_rc 0 || return 1
    fg -u 1000:1000 -v "$S/share:/mnt" -- sh -c 'echo y >/mnt/by-1000'
    expect_rc 0 || return 1
    local a b
    a=$(stat -c %u:%g "$S/share/by-root" 2>&1) b=$(stat -c %u:%g "$S/share/by-1000" 2>&1)
    [ "$a" = "$TUID:$TGID" ] || { note "a file written by the container's root is owned by $a outside, expected $TUID:$TGID"; return 1; }
    [ "$b" = "$((SUBUID + 999)):$((SUBGID + 999))" ] ||
        { note "a file written by the container's uid 1000 is owned by $b outside, expected $((SUBUID + 999)):$((SUBGID + 999))"; return 1; }
}
# The runtime's exec errors, worded so that podman maps them to 127 and 126.
c_exec_errors() {
    fg -- /no/such/cmd
    expect_rc 127 && expect_out '/no/such/cmd.*no such file or directory' || return 1
    fg -- /etc/passwd
    expect_rc 126 && expect_out 'permission denied'
}
# run -t: the runtime makes the pty inside the user namespace and hands its master to conmon
# over the console socket; the container's stdio is the pty's slave, owned by the container.
c_tty() {
    local n; n=$(newname tty)
    rm -f "$S/cid"
    run script -qec "$(printf '%q ' "${AS_USER[@]}" "${PODMAN[@]}") run -t --rm --pull=never --cidfile $S/cid --name $n $IMG sh -c 'tty; stat -c pty-owner=%u /proc/self/fd/0; exit 5'" /dev/null
    add_container "$n" "$(cat "$S/cid" 2>/dev/null)"
    expect_rc 5 && expect_out '^/dev/pts/0$' && expect_out '^pty-owner=0$'
}
# A detached container: its init runs as the user in its own user namespace, with its state under
# XDG_RUNTIME_DIR; exec (output, exit status, -u), ps, top, restart, stop (SIGTERM reaches the
# trap), rm.
c_detached() {
    local n; n=$(newname bg)
    run pm run -d --pull=never --name "$n" "$IMG" sh -c 'trap "exit 42" TERM; sleep 1000 & wait'
    local rc=$RC id; id=$(pm inspect -f '{{.Id}}' "$n" 2>/dev/null)
    add_container "$n" "$id"
    [ $rc = 0 ] || { note "podman run -d failed: $(out | tail -5)"; return 1; }
    wait_for 10 eval '[ "$(cstate "$n" Status)" = running ]' || { note "not running: $(cstate "$n" Status)"; return 1; }
    local pid; pid=$(cstate "$n" Pid)
    local puid; puid=$(awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status" 2>/dev/null)
    [ "$puid" = "$TUID" ] || { note "the container's init (host pid $pid) runs as uid '$puid' outside, expected $TUID"; return 1; }
    [ "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)" ] ||
        { note "the container's init is in the host's user namespace"; return 1; }
    # The runtime's state lives under the user's XDG_RUNTIME_DIR (podman passes no --root), and
    # belongs to the user.
    local st; st=$(stat -c %u "$S/xdg/$RTNAME/$id" 2>&1)
    [ "$st" = "$TUID" ] || { note "runtime state $S/xdg/$RTNAME/$id: owner $st, expected $TUID"; return 1; }
    [ -e "/run/$RTNAME/$id" ] && { note "runtime state in /run/$RTNAME/$id"; return 1; }
    run pm exec "$n" sh -c 'echo exec-$((6*7)) uid=$(id -u)'
    expect_rc 0 && expect_out '^exec-42 uid=0$' || return 1
    run pm exec "$n" sh -c 'exit 7'; expect_rc 7 || return 1
    run pm exec -u 1000:1000 "$n" id -u; expect_rc 0 && expect_out '^1000$' || return 1
    run pm ps --filter status=running --format '{{.Names}}'
    expect_out "^$n\$" || return 1
    run pm top "$n" user pid args
    expect_rc 0 && expect_out 'sleep 1000' || return 1
    # restart: a new create with the same id (SIGTERM ends the first init through its trap).
    run pm restart -t 10 "$n"
    expect_rc 0 || return 1
    wait_for 10 eval '[ "$(cstate "$n" Status)" = running ]' || { note "not running after restart: $(cstate "$n" Status)"; return 1; }
    kill -0 "$pid" 2>/dev/null && { note "the first init (host pid $pid) still runs after restart"; return 1; }
    pid=$(cstate "$n" Pid)
    run pm exec "$n" echo exec-after-restart; expect_out '^exec-after-restart$' || return 1
    run pm stop -t 10 "$n"
    expect_rc 0 || return 1
    local ec; ec=$(cstate "$n" ExitCode)
    [ "$ec" = 42 ] || { note "exit code after stop: $ec, expected 42 (the TERM trap)"; return 1; }
    kill -0 "$pid" 2>/dev/null && { note "host pid $pid still runs after stop"; return 1; }
    run pm rm "$n"; expect_rc 0 || return 1
    run pm ps -a --format '{{.Names}}'
    ! out | grep -qx "$n" || { note "podman still lists $n after rm"; return 1; }
}

# Last: with every container removed and the pause process ended, nothing of the user runs, no
# mount of its storage shows on the host, and the runtime keeps no state.
c_no_leftovers() {
    run pm ps -a --format '{{.Names}}'
    [ -z "$(out)" ] || { note "podman still lists: $(out | tr '\n' ' ')"; pm rm -af -t 0 >/dev/null 2>&1; }
    local left
    if ! stop_user_procs; then note "processes of $TUSER still running after the pause process ended (killed now)"; fi
    left=$(mounts_under_S | tr '\n' ' ')
    [ -z "$left" ] || note "mounts on the host: $left"
    left=$(find "$S/xdg/$RTNAME" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)
    [ -z "$left" ] || note "runtime state left in $S/xdg/$RTNAME: $left"
    [ ${#MSG[@]} = 0 ]
}

echo "== rootless podman as $TUSER (uid $TUID, subuids $SUBUID+$SUBUID_N, subgids $SUBGID+$SUBGID_N)"
echo "== runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); scratch: $S"
START=$SECONDS
build_image
ONLY_SAVED=$ONLY; ONLY=
check import c_import
ONLY=$ONLY_SAVED
if [ -z "${PODMAN_READY:-}" ]; then
    echo "== $((SECONDS - START))s"; echo "$PASS passed, $FAILN failed"; exit 1
fi
check run-output c_run_output
check uid-map c_uid_map
check keep-id c_keep_id
check bind-owner c_bind_owner
check exec-errors c_exec_errors
check tty c_tty
check detached c_detached
ONLY=; check no-leftovers c_no_leftovers

echo "== $E: $((SECONDS - START))s; runtime $RUNTIME"
[ ${#FAILED_NAMES[@]} -gt 0 ] && echo "failed: ${FAILED_NAMES[*]}"
if [ $SKIPN -gt 0 ]; then
    echo "$PASS passed, $FAILN failed, $SKIPN skipped"
else
    echo "$PASS passed, $FAILN failed"
fi
[ $FAILN = 0 ]
