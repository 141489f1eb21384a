#!/usr/bin/env bash
# hack/engines/test.sh: end-to-end tests of a runtime under the real engines (issue 5).
#
#   hack/engines/test.sh [--runtime PATH] [--engines "containerd docker podman"] [--only REGEX]
#                        [--cgroup-driver cgroupfs|systemd] [--direct] [--keep] [--no-install]
#
# As root. Installs what is missing from Debian (containerd, docker.io, podman, conmon,
# busybox-static, tmux), builds a busybox image from /bin/busybox and imports it into
# each engine (nothing is ever pulled: every docker/podman run has --pull=never), starts each
# daemon with private state under a temporary directory, on unix sockets only, runs the checks,
# and stops the daemons by pid at the end.
#
#   --runtime PATH   the runtime under test (default: $HUTCH, else target/x86_64-unknown-linux-gnu/release/hutch).
#                    `--runtime /usr/sbin/runc` proves the suite itself.
#   --engines LIST   a subset of "containerd docker podman" (default: all three).
#   --only REGEX     run only the checks whose name matches (e.g. 'tty|exec').
#   --cgroup-driver D  cgroupfs (default), or systemd: docker with native.cgroupdriver=systemd and
#                    podman with --cgroup-manager systemd, so the runtime gets --systemd-cgroup
#                    and a slice:prefix:name cgroupsPath. Needs systemd as PID 1 (hack/test.sh
#                    runs it in hack/systemd-vm.sh); adds the check systemd-scope. containerd
#                    with the systemd driver is hack/engines/systemd-containerd.sh.
#   --direct         point the engines at the runtime itself; by default they get a tiny /bin/sh
#                    wrapper that records each call's argv (and keeps a copy of the --log file)
#                    and then execs the runtime, so a failure can show what the engine sent.
#   --keep           keep the temporary directory (daemon logs, runtime calls) at the end.
#   --no-install     do not apt-get anything; fail if a tool is missing.
#
# Prints "ok|FAIL|skip <engine> <check>" per check, the engine's output, the runtime's calls and
# its log on a failure, and ends with the line "N passed, M failed[, K skipped]". Exit status: 0
# only when nothing failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

RUNTIME=${HUTCH:-$repo/target/x86_64-unknown-linux-gnu/release/hutch}
ENGINES="containerd docker podman"
ONLY=
DIRECT=0
KEEP=0
INSTALL=1
CGROUP_DRIVER=cgroupfs
while [ $# -gt 0 ]; do
    case $1 in
        --runtime) RUNTIME=$2; shift 2 ;;
        --runtime=*) RUNTIME=${1#*=}; shift ;;
        --engines) ENGINES=$2; shift 2 ;;
        --engines=*) ENGINES=${1#*=}; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --cgroup-driver) CGROUP_DRIVER=$2; shift 2 ;;
        --cgroup-driver=*) CGROUP_DRIVER=${1#*=}; shift ;;
        --direct) DIRECT=1; shift ;;
        --keep) KEEP=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "engines/test.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "engines/test.sh: $*" >&2; exit 1; }
# shellcheck source=hack/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
case $CGROUP_DRIVER in
    cgroupfs) ;;
    systemd) [ -d /run/systemd/system ] || die "--cgroup-driver systemd: systemd is not PID 1 here"
             [[ " $ENGINES " != *" containerd "* ]] ||
                 die "--cgroup-driver systemd: containerd is hack/engines/systemd-containerd.sh" ;;
    *) die "--cgroup-driver: cgroupfs or systemd" ;;
esac
case $RUNTIME in /*) ;; *) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;; esac
[ -x "$RUNTIME" ] || die "runtime $RUNTIME is not an executable (build it: cargo build --release)"
RTNAME=$(basename "$RUNTIME")
# The runtime's default --root, which podman uses (it never passes --root).
RT_DEFAULT_ROOT=${RUNTIME_DEFAULT_ROOT:-/run/$RTNAME}

# --- packages -------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }

want tmux tmux
want script bsdutils
want timeout coreutils
for e in $ENGINES; do
    case $e in
        containerd) want containerd containerd; want ctr containerd
                    want containerd-shim-runc-v2 containerd ;;
        docker) want dockerd docker.io; [ -x /usr/bin/docker ] || need+=(docker.io) ;;
        podman) want podman podman; want conmon conmon ;;
        *) die "unknown engine $e" ;;
    esac
done
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
    [ $INSTALL = 1 ] || die "missing packages: ${need[*]}"
    apt_install /tmp/hutch-engines-apt.log "${need[@]}" || die "apt-get install failed"
fi
# /usr/local/bin may hold a newer docker CLI: use the one that matches docker.io's daemon.
DOCKER_CLI=/usr/bin/docker

# --- work dir, cleanup ----------------------------------------------------------------------
T=$(mktemp -d /tmp/hutch-e2e.XXXXXX)
chmod 755 "$T"
# The engines' helpers write relative files into their cwd (conmon 2.1.6 writes "oom" there).
cd "$T" || die "cd $T"
mkdir -p "$T/logs"
: >"$T/runtime-calls.log"
DAEMON_PIDS=()
DK=() PODMAN=() PODMAN_CONF_ONLY=() ALL_IDS=()
TMUX_SOCK=$T/tmux.sock
PASS=0 FAILN=0 SKIPN=0
FAILED_NAMES=()

cleanup() {
    local rc=$?
    set +e
    cd /
    # Remove what the checks may have left (by engine, so the daemons clean up their own mounts).
    [ -n "${CTR_SOCK:-}" ] && [ -S "$CTR_SOCK" ] && ctr_cleanup_all
    [ -S "${DOCKER_SOCK:-/nonexistent}" ] &&
        timeout 60 "${DK[@]}" rm -f $("${DK[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1
    [ -n "${PODMAN_READY:-}" ] && timeout 60 pm rm -af -t 0 >/dev/null 2>&1
    tmux_stop
    # What a failing runtime left behind for our containers (reported as failures already):
    # empty cgroup dirs and podman's state dirs under the runtime's default root.
    local id d
    for id in "${ALL_IDS[@]}"; do
        [ -n "$id" ] || continue
        find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -depth -type d -path "*$id*" -exec rmdir {} \; 2>/dev/null
        [ -d "$RT_DEFAULT_ROOT/$id" ] && rm -rf "${RT_DEFAULT_ROOT:?}/$id"
    done
    local i pid
    for ((i = ${#DAEMON_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${DAEMON_PIDS[i]}
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
    done
    # Engines' mounts under $T (overlay, shm, their own private bind of the storage dir).
    if [ -d "$T" ]; then
        mounts_under_T | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
        if [ $KEEP = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the runtime the engines call -----------------------------------------------------------
if [ $DIRECT = 1 ]; then
    ENGINE_RT=$RUNTIME
else
    ENGINE_RT=$T/rt/$RTNAME
    mkdir -p "$T/rt"
    # No external commands but cp (by absolute path): podman calls kill/delete/state with no PATH.
    cat >"$ENGINE_RT" <<EOF
#!/bin/sh
printf '%s\n' "[\$\$] \$*" >>$T/runtime-calls.log
prev=
for a in "\$@"; do
    if [ "\$prev" = --log ] && [ -f "\$a" ]; then
        d=\${a%/*}; /bin/cp -f "\$a" "$T/logs/\${d##*/}.log.json" 2>/dev/null
    fi
    prev=\$a
done
exec $RUNTIME "\$@"
EOF
    chmod 755 "$ENGINE_RT"
fi
HOST_CAPBND=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
export HUTCH_E2E_MARKER=runtime-env-must-not-leak

echo "== runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); engines call: $ENGINE_RT"
echo "== work dir: $T"

# --- the busybox image ----------------------------------------------------------------------
IMG=localhost/hutch-e2e/busybox:latest
build_image() {
    local b=$T/image
    NO_CONFIG=1 "$repo/hack/mkbundle.sh" "$b" >/dev/null || die "mkbundle failed"
    tar --numeric-owner -C "$b/rootfs" -cf "$b/rootfs.tar" . || die "tar failed"
    # An OCI image layout archive for `ctr images import` (docker 20.10 cannot load OCI).
    local oci=$b/oci arch ld ls cd cs md ms
    arch=$(dpkg --print-architecture)
    mkdir -p "$oci/blobs/sha256"
    ld=$(sha256sum "$b/rootfs.tar" | cut -d' ' -f1); ls=$(stat -c %s "$b/rootfs.tar")
    cp "$b/rootfs.tar" "$oci/blobs/sha256/$ld"
    printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$arch" "$ld" >"$b/config.json"
    cd=$(sha256sum "$b/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$b/config.json")
    cp "$b/config.json" "$oci/blobs/sha256/$cd"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cd" "$cs" "$ld" "$ls" >"$b/manifest.json"
    md=$(sha256sum "$b/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$b/manifest.json")
    cp "$b/manifest.json" "$oci/blobs/sha256/$md"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
        "$md" "$ms" "$arch" "$IMG" >"$oci/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
    tar -C "$oci" -cf "$b/oci.tar" oci-layout index.json blobs || die "tar failed"
    ROOTFS_TAR=$b/rootfs.tar
    OCI_TAR=$b/oci.tar
}

# --- helpers --------------------------------------------------------------------------------
OUT=$T/out       # the last engine command's stdout+stderr
MSG=()           # why the current check failed
CUR_NAMES=()     # engine names of the containers the current check made
CUR_IDS=()       # their full ids

note() { MSG+=("$*"); }
# run CMD...: run an engine command (60s at most), output in $OUT (appended to $T/check.log), rc in $RC
run() {
    local cmd=("$@")
    case $1 in   # timeout(1) runs programs, not shell functions
        ctr_) cmd=(ctr -a "$CTR_SOCK" -n "$CTR_NS" "${@:2}") ;;
        dk) cmd=("${DK[@]}" "${@:2}") ;;
        pm) cmd=("${PODMAN[@]}" "${@:2}") ;;
    esac
    timeout -k 5 60 "${cmd[@]}" >"$OUT" 2>&1 </dev/null
    RC=$?
    { echo "\$ $*"; cat "$OUT"; echo "[rc=$RC]"; } >>"$T/check.log"
    return $RC
}
out() { tr -d '\r\0' <"$OUT"; }
expect_rc() { [ "$RC" = "$1" ] || { note "expected exit code $1, got $RC: $(out | tail -5)"; return 1; }; }
expect_out() { out | grep -qE -- "$1" || { note "expected output matching '$1', got: $(out | tail -5)"; return 1; }; }
expect_no_out() { ! out | grep -qE -- "$1" || { note "unexpected output matching '$1': $(out | grep -E -- "$1" | head -3)"; return 1; }; }
# wait_for SECONDS CMD...: retry CMD every 0.2s
wait_for() {
    local _wf_n=$(($1 * 5)); shift
    while ((_wf_n-- > 0)); do "$@" && return 0; sleep 0.2; done
    return 1
}
newname() { echo "e2e-$1-$RANDOM$RANDOM"; }
add_container() { CUR_NAMES+=("$1"); CUR_IDS+=("${2:-}"); ALL_IDS+=("${2:-$1}"); }

# The checks name v1 files and values; on a pure cgroup v2 host (the systemd VM) they are read
# from the v2 file that holds the same limit.
CG_V2=0
[ -f /sys/fs/cgroup/cgroup.controllers ] && CG_V2=1
# cgroup_of PID CONTROLLER → the pid's cgroup path in that v1 hierarchy, or its v2 one ("" if none)
cgroup_of() {
    if [ $CG_V2 = 1 ]; then awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup" 2>/dev/null; return; fi
    awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup" 2>/dev/null | head -1
}
# v2_name V1FILE → the v2 file with the same limit
v2_name() {
    case $1 in
        memory.limit_in_bytes) echo memory.max ;;
        memory.memsw.limit_in_bytes) echo memory.swap.max ;;
        freezer.state) echo cgroup.freeze ;;
        *) echo "$1" ;;
    esac
}
cg_file() { # cg_file PID CONTROLLER FILE → host path of FILE in the pid's cgroup
    local p; p=$(cgroup_of "$1" "$2")
    [ -n "$p" ] || return 0
    if [ $CG_V2 = 1 ]; then echo "/sys/fs/cgroup${p%/}/$(v2_name "$3")"; else echo "/sys/fs/cgroup/$2$p/$3"; fi
}
expect_cg() { # expect_cg PID CONTROLLER V1FILE V1VALUE
    local f v want=$4; f=$(cg_file "$1" "$2" "$3")
    if [ $CG_V2 = 1 ]; then case $want in FROZEN) want=1 ;; THAWED) want=0 ;; esac; fi
    v=$(cat "$f" 2>/dev/null)
    [ "$v" = "$want" ] || { note "host cgroup $f = '$v', expected '$want'"; return 1; }
}

tmux_stop() {
    local pid
    [ -S "$TMUX_SOCK" ] || return 0
    pid=$(tmux -S "$TMUX_SOCK" display-message -p '#{pid}' 2>/dev/null)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    for _ in $(seq 25); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$TMUX_SOCK"
}
# tty_session CMD: run CMD (which must start an interactive sh in a container on a tty) in a tmux
# pane, type into it, and check that the typed input is echoed and the command's output and exit
# status come back.
tty_session() {
    local cmd=$1 screen
    tmux_stop
    tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s e2e -x 120 -y 40 \
        "$cmd; echo TTY-EXIT=\$?; sleep 600" || { note "tmux failed to start"; return 1; }
    screen() { tmux -S "$TMUX_SOCK" capture-pane -p -t e2e 2>/dev/null | tr -d '\0'; }
    # Wait for the shell's prompt ("/ #" for root in busybox sh).
    if ! wait_for 20 eval 'screen | grep -qE "[#$] *$"'; then
        note "no shell prompt on the tty; screen: $(screen | grep -v '^$' | tail -8)"; tmux_stop; return 1
    fi
    tmux -S "$TMUX_SOCK" send-keys -t e2e 'echo typed-$((6*7)); tty; stty size' Enter
    if ! wait_for 10 eval 'screen | grep -q "^typed-42"'; then
        note "typed command did not run; screen: $(screen | grep -v '^$' | tail -8)"; tmux_stop; return 1
    fi
    local ok=0
    wait_for 5 eval 'screen | grep -qE "^[0-9]+ 120\$"' || { note "stty size in the container is not the 120-column window: $(screen | grep -v '^$' | tail -4)"; ok=1; }
    screen | grep -qF 'echo typed-$((6*7)); tty; stty size' || { note "typed input was not echoed: $(screen | grep -v '^$' | tail -8)"; ok=1; }
    screen | grep -qE '^/dev/(pts/[0-9]+|console)' || { note "tty(1) in the container: $(screen | grep -v '^$' | tail -8)"; ok=1; }
    tmux -S "$TMUX_SOCK" send-keys -t e2e 'exit 5' Enter
    if ! wait_for 20 eval 'screen | grep -q "^TTY-EXIT="'; then
        note "the session did not end after 'exit 5': $(screen | grep -v '^$' | tail -8)"; ok=1
    elif ! screen | grep -q '^TTY-EXIT=5'; then
        note "exit status of the tty session: $(screen | grep '^TTY-EXIT=') (expected 5)"; ok=1
    fi
    { echo "\$ (tmux) $cmd"; screen; } >>"$T/check.log"
    tmux_stop
    return $ok
}

# Things the runtime must not leave behind for a container id.
leftovers() {
    local id=$1 name=$2 found=() f
    [ -e "$RTROOT/$id" ] && found+=("runtime state dir $RTROOT/$id")
    while read -r f; do found+=("cgroup $f"); done < <(find /sys/fs/cgroup -mindepth 2 -maxdepth 5 -type d -name "*$id*" 2>/dev/null)
    while read -r f; do found+=("mount $f"); done < <(awk -v id="$id" 'index($5, id) { print $5 }' /proc/self/mountinfo)
    for f in /proc/[0-9]*/cgroup; do
        grep -q "$id" "$f" 2>/dev/null && found+=("process ${f#/proc/} $(tr '\0' ' ' <"${f%/cgroup}/cmdline" 2>/dev/null)")
    done
    if engine_has "$name"; then found+=("the engine still lists container $name"); fi
    [ ${#found[@]} -eq 0 ] && return 0
    LEFT=("${found[@]}")
    return 1
}
mounts_under_T() { awk -v t="$T" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort; }

# check NAME FUNCTION: run one check, then verify that nothing is left behind.
check() {
    local name=$1 fn=$2 ok=0 t0=$SECONDS i
    if [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]]; then return; fi
    MSG=() CUR_NAMES=() CUR_IDS=()
    : >"$T/check.log"
    local calls0; calls0=$(wc -l <"$T/runtime-calls.log" 2>/dev/null || echo 0)
    "$fn"
    ok=$?
    if [ $ok = 77 ]; then
        echo "skip $ENGINE $name: ${MSG[*]}"; SKIPN=$((SKIPN + 1)); return
    fi
    # Remove whatever the check left running, then look for leftovers.
    for i in "${!CUR_NAMES[@]}"; do engine_rm "${CUR_NAMES[i]}" >/dev/null 2>&1; done
    for i in "${!CUR_NAMES[@]}"; do
        local id=${CUR_IDS[i]:-${CUR_NAMES[i]}}
        LEFT=()
        if ! wait_for 10 leftovers "$id" "${CUR_NAMES[i]}"; then
            note "left behind for ${CUR_NAMES[i]}: $(printf '%s; ' "${LEFT[@]}")"; ok=1
        fi
    done
    # New mounts under $T: an engine may privately bind its own storage dir on first use, but a
    # container's rootfs, its /proc, /dev, shm... must be gone (or never propagated to the host).
    local m new=()
    while read -r m; do
        if [[ "$m" =~ /(merged|rootfs|shm|mounts|userdata)(/|$) ]]; then new+=("$m"); fi
    done < <(mounts_under_T | comm -13 "$T/mounts0" -)
    mounts_under_T >"$T/mounts0"
    if [ ${#new[@]} -gt 0 ]; then note "mounts left under $T: ${new[*]}"; ok=1; fi
    if [ $ok = 0 ]; then
        echo "ok   $ENGINE $name ($((SECONDS - t0))s)"; PASS=$((PASS + 1))
    else
        echo "FAIL $ENGINE $name ($((SECONDS - t0))s)"; FAILN=$((FAILN + 1)); FAILED_NAMES+=("$ENGINE/$name")
        printf '    %s\n' "${MSG[@]}"
        echo "    --- engine commands and output:"; sed 's/^/    | /' "$T/check.log" | tail -60
        if [ -s "$T/runtime-calls.log" ]; then
            echo "    --- runtime calls during the check:"
            tail -n +"$((calls0 + 1))" "$T/runtime-calls.log" | sed 's/^/    | /' | tail -40
        fi
        for i in "${!CUR_NAMES[@]}"; do engine_runtime_log "${CUR_IDS[i]:-${CUR_NAMES[i]}}"; done
    fi
}
show_log_json() { # show_log_json FILE...: the runtime's --log file(s), if any
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "    --- runtime log $f:"; tail -20 "$f" | sed 's/^/    | /'
    done
}

# --- engine-neutral checks, written against the e_* functions each engine defines ------------
#   e_fg OPTS... -- CMD...     run in the foreground with --rm (OPTS: env=K=V cwd=D user=U:G ro
#                              mem=BYTES pids=N); output in $OUT, exit status in $RC
#   e_bg NAME OPTS... -- CMD... detached; sets CID (full id) and registers the container
#   e_exec NAME [user=U:G|tty] -- CMD...
#   e_stop NAME SECS; e_kill NAME [SIG]; e_rm NAME; e_pause NAME; e_unpause NAME
#   e_status NAME → running|paused|exited...; e_exitcode NAME; e_pid NAME
#   e_top NAME; e_stats NAME; e_update NAME MEMBYTES SWAPBYTES PIDS
#   e_tty_run NAME / e_tty_exec NAME → a shell command line for tty_session
status_is() { [ "$(e_status "$1")" = "$2" ]; }
# expect_running NAME [WHAT]: NAME is running within 10s (WHAT: after what, for the note)
expect_running() {
    wait_for 10 status_is "$1" running ||
        { note "container $1 is not running${2:+ after $2}: $(e_status "$1")"; return 1; }
}
# expect_exit NAME SECS CODE WHAT: NAME stops within SECS and exits with CODE (WHAT: after what)
expect_exit() {
    local _ee_n=$1 ec
    wait_for "$2" eval '! status_is "$_ee_n" running' || { note "still running after $4"; return 1; }
    ec=$(e_exitcode "$1")
    [ "$ec" = "$3" ] || { note "exit code after $4: '$ec', expected $3"; return 1; }
}
bg_run() { # bg_run NAME OPTS... -- CMD...: a detached container, running
    local n=$1; shift
    e_bg "$n" "$@" || { note "detached run failed: $(out | tail -5)"; return 1; }
    expect_running "$n"
}
bg_sleep() { # bg_sleep NAME [OPTS...]: a detached container running `sleep 1000`
    local n=$1; shift
    bg_run "$n" "$@" -- sleep 1000
}

c_run_output() {
    e_fg -- sh -c 'echo hello-$((6*7)); echo to-stderr >&2'
    expect_rc 0 && expect_out '^hello-42$' && expect_out '^to-stderr$'
}
c_exit_code() { e_fg -- sh -c 'exit 3'; expect_rc 3; }
c_missing_command() {
    # docker and podman turn the runtime's "no such file or directory" into 127; ctr exits 1.
    local want=127; [ "$ENGINE" = containerd ] && want=1
    e_fg -- /no/such/cmd
    [ "$RC" = $want ] || { note "exit code $RC for a missing command (runc gives $want): $(out | tail -3)"; return 1; }
    expect_out '/no/such/cmd.*no such file or directory'
}
c_not_executable() {
    # docker and podman turn the runtime's "permission denied" into 126; ctr exits 1.
    local want=126; [ "$ENGINE" = containerd ] && want=1
    e_fg -- /etc/passwd
    [ "$RC" = $want ] || { note "exit code $RC for a command that is not executable (runc gives $want): $(out | tail -3)"; return 1; }
    expect_out 'permission denied'
}
c_stdin() {
    [ "$ENGINE" = containerd ] && { note "ctr run never closes the task's stdin at EOF"; return 77; }
    local n; n=$(newname stdin)
    rm -f "$T/cid"
    case $ENGINE in
        docker) printf 'line-1\nline-2\n' | timeout 60 "${DK[@]}" run -i --rm --pull=never --runtime "$DOCKER_RT_NAME" --cidfile "$T/cid" --name "$n" "$IMG" sh -c 'cat; echo done' >"$OUT" 2>&1 ;;
        podman) printf 'line-1\nline-2\n' | timeout 60 "${PODMAN[@]}" run -i --rm --pull=never --cidfile "$T/cid" --name "$n" "$IMG" sh -c 'cat; echo done' >"$OUT" 2>&1 ;;
    esac
    RC=$?
    add_container "$n" "$(cat "$T/cid" 2>/dev/null)"
    { echo "\$ printf 'line-1\\nline-2\\n' | $ENGINE run -i ... sh -c 'cat; echo done'"; cat "$OUT"; echo "[rc=$RC]"; } >>"$T/check.log"
    expect_rc 0 && expect_out '^line-2$' && expect_out '^done$'
}
c_env() {
    e_fg env=E2E_FOO=bar-baz -- env
    expect_rc 0 && expect_out '^E2E_FOO=bar-baz$' && expect_out '^PATH=' &&
        expect_no_out 'HUTCH_E2E_MARKER|TTRPC_ADDRESS|CONTAINERS_CONF|_OCI_SYNCPIPE|DOCKER_HOST|GOMAXPROCS'
}
c_workdir() { e_fg cwd=/var/tmp -- pwd; expect_rc 0 && expect_out '^/var/tmp$'; }
c_user() {
    [ "$ENGINE" = containerd ] && { note "ctr 1.6 run has no --user (detached-exec checks exec --user)"; return 77; }
    e_fg user=1000:1000 -- sh -c 'id; touch /root/x'
    expect_out '^uid=1000\(user\) gid=1000\(user\)' && expect_out 'Permission denied'
}
c_read_only() {
    e_fg ro -- sh -c 'touch /rofile; echo rc=$?; grep " / " /proc/mounts'
    expect_rc 0 && expect_out 'Read-only file system' && expect_out '^rc=1$' && expect_out ' / [^ ]+ ro[, ]'
}
c_options() {
    # Common run options, each turned into config.json by the engine.
    mkdir -p "$T/bindsrc"; echo from-host >"$T/bindsrc/file"
    if [ "$ENGINE" = containerd ]; then
        e_fg raw=--mount=type=bind,src=$T/bindsrc,dst=/mnt/host,options=rbind:ro -- sh -c 'cat /mnt/host/file; touch /mnt/host/x 2>&1'
        expect_rc 1 && expect_out '^from-host$' && expect_out 'Read-only file system' || return 1
        e_fg raw=--privileged -- sh -c 'ls /dev/kmsg >/dev/null && grep CapEff /proc/self/status'
        expect_rc 0 && expect_out "CapEff:[[:space:]]+$HOST_CAPBND" || return 1
        e_fg raw=--net-host -- sh -c 'ls /sys/class/net | grep -v "^lo$" | head -1 | grep . && echo has-host-net'
        expect_rc 0 && expect_out '^has-host-net$' || return 1
        return 0
    fi
    e_fg raw=--hostname=e2e-host raw=-v=$T/bindsrc:/mnt/host:ro raw=--tmpfs=/scratch:size=1m \
        -- sh -c 'hostname; cat /mnt/host/file; touch /mnt/host/x 2>&1; touch /scratch/y && echo tmpfs-ok; grep " /scratch " /proc/mounts'
    expect_rc 0 && expect_out '^e2e-host$' && expect_out '^from-host$' && expect_out 'Read-only file system' &&
        expect_out '^tmpfs-ok$' && expect_out ' /scratch tmpfs .*size=1024k' || return 1
    e_fg raw=--cap-drop=ALL raw=--cap-add=NET_RAW raw=--cap-add=CHOWN -- sh -c 'grep CapEff /proc/self/status; chown 1000 /tmp; echo chown=$?; mknod /tmp/n c 1 3 2>&1; echo mknod=$?'
    expect_out 'CapEff:[[:space:]]+0000000000002001' && expect_out '^chown=0$' && expect_out '^mknod=1$' || return 1
    e_fg raw=--ulimit=nofile=512:1024 raw=--ulimit=nproc=1000:2000 raw=--shm-size=8m -- sh -c 'ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1'
    expect_rc 0 && expect_out '^512$' && expect_out '^1024$' && expect_out ' 8192 ' || return 1
    # docker --privileged asks for every capability, and this sandbox's bounding set lacks
    # CAP_SYS_RESOURCE: runc fails too ("unable to apply caps"). podman asks for its own set.
    if [ "$ENGINE" = podman ]; then
        e_fg raw=--privileged -- sh -c 'ls /dev/kmsg >/dev/null && grep -E "CapEff|Seccomp:" /proc/self/status'
        expect_rc 0 && expect_out "CapEff:[[:space:]]+$HOST_CAPBND" && expect_out 'Seccomp:[[:space:]]+0' || return 1
    fi
    e_fg raw=--network=host -- sh -c 'ls /sys/class/net | grep -v "^lo$" | head -1 | grep . && echo has-host-net'
    expect_rc 0 && expect_out '^has-host-net$' || return 1
    e_fg raw=--sysctl=net.ipv4.ip_forward=1 -- cat /proc/sys/net/ipv4/ip_forward
    expect_rc 0 && expect_out '^1$'
}
c_fds() {
    e_fg -- sh -c 'ls /proc/self/fd | sort -n | tr "\n" " "'
    expect_rc 0 && expect_out '^0 1 2 3 ?$'
}
c_detached_exec() {
    local n; n=$(newname exec)
    bg_sleep "$n" || return 1
    e_exec "$n" -- sh -c 'echo in-exec; ls /proc/1/cmdline >/dev/null && cat /proc/1/cmdline | tr "\0" " "'
    expect_rc 0 && expect_out '^in-exec$' && expect_out '^sleep 1000' || return 1
    e_exec "$n" -- sh -c 'exit 7'; expect_rc 7 || return 1
    e_exec "$n" user=1000:1000 -- id; expect_rc 0 && expect_out '^uid=1000\(user\) gid=1000\(user\)' || return 1
    e_exec "$n" -- /no/such/cmd
    [ "$RC" != 0 ] || { note "exec of a missing command succeeded"; return 1; }
    e_exec "$n" detach -- sh -c 'echo detached >/tmp/exec-d'
    expect_rc 0 || return 1
    wait_for 5 eval 'e_exec "$n" -- cat /tmp/exec-d && out | grep -q "^detached$"' ||
        { note "exec -d did not run: $(out | tail -3)"; return 1; }
    e_exec "$n" tty -- sh -c 'tty; stty size'
    expect_rc 0 && expect_out '(^|\^@)/dev/pts/[0-9]+' || return 1   # ctr: a stray NUL (^@) first
    status_is "$n" running || { note "container not running after the execs: $(e_status "$n")"; return 1; }
}
c_stop_term() {
    local n t0; n=$(newname stopterm)
    bg_run "$n" -- sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done' || return 1
    sleep 0.5
    t0=$SECONDS
    e_stop "$n" 20 || { note "stop failed: $(out | tail -3)"; return 1; }
    expect_exit "$n" 20 7 "stop (a handled SIGTERM)" || return 1
    ((SECONDS - t0 < 10)) || { note "stop took $((SECONDS - t0))s although the container handles SIGTERM"; return 1; }
}
c_stop_kill() {
    local n t0; n=$(newname stopkill)
    bg_sleep "$n" || return 1   # pid 1 without a handler ignores SIGTERM: stop must escalate to SIGKILL
    t0=$SECONDS
    e_stop "$n" 2 || { note "stop failed: $(out | tail -3)"; return 1; }
    expect_exit "$n" 20 137 stop || return 1
    ((SECONDS - t0 >= 2)) || { note "stopped after $((SECONDS - t0))s, before the 2s timeout: SIGTERM was not ignored?"; return 1; }
}
c_kill() {
    local n m; n=$(newname killusr1); m=$(newname kill9)
    bg_run "$n" -- sh -c 'trap "exit 42" USR1; while :; do sleep 0.1; done' || return 1
    bg_sleep "$m" || return 1
    sleep 0.5
    e_kill "$n" USR1 || { note "kill -s USR1 failed: $(out | tail -3)"; return 1; }
    expect_exit "$n" 10 42 SIGUSR1 || return 1
    e_kill "$m" KILL || { note "kill -s KILL failed: $(out | tail -3)"; return 1; }
    expect_exit "$m" 10 137 SIGKILL
}
c_pid_host_stop() {
    # A container in the host's pid namespace: the engine stops it with `kill --all`.
    # (ctr --with-ns pid:/proc/1/ns/pid fails with runc here: "can't get final child's PID from pipe")
    [ "$ENGINE" = containerd ] && { note "ctr run has no --pid host"; return 77; }
    local n t0; n=$(newname pidhost)
    bg_run "$n" pidhost -- sh -c 'sleep 1000 & sleep 1000 & wait' || return 1
    e_stop "$n" 2 || { note "stop failed: $(out | tail -3)"; return 1; }
    wait_for 20 eval '! status_is "$n" running' || { note "still running after stop"; return 1; }
}
c_rm_force() {
    local n; n=$(newname rmf)
    bg_sleep "$n" || return 1
    e_exec "$n" -- sh -c 'sleep 1000 & sleep 1000 & echo started' >/dev/null
    e_rm "$n" || { note "rm -f failed: $(out | tail -3)"; return 1; }
    ! engine_has "$n" || { note "the engine still lists $n after rm -f"; return 1; }
}
c_pause() {
    local n pid c1 c2; n=$(newname pause)
    bg_run "$n" -- sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.05; done' || return 1
    pid=$(e_pid "$n")
    e_pause "$n" || { note "pause failed: $(out | tail -3)"; return 1; }
    wait_for 5 status_is "$n" paused || { note "status after pause: $(e_status "$n")"; return 1; }
    expect_cg "$pid" freezer freezer.state FROZEN || return 1
    c1=$(cat "/proc/$pid/root/tmp/count"); sleep 0.5; c2=$(cat "/proc/$pid/root/tmp/count")
    [ "$c1" = "$c2" ] || { note "the container ran while paused ($c1 -> $c2)"; return 1; }
    e_unpause "$n" || { note "unpause failed: $(out | tail -3)"; return 1; }
    wait_for 5 status_is "$n" running || { note "status after unpause: $(e_status "$n")"; return 1; }
    expect_cg "$pid" freezer freezer.state THAWED || return 1
    sleep 0.5; c1=$(cat "/proc/$pid/root/tmp/count")
    [ "$c1" != "$c2" ] || { note "the container does not run after unpause"; return 1; }
}
c_top() {
    local n pid; n=$(newname top)
    bg_sleep "$n" || return 1
    e_exec "$n" -- sh -c 'sleep 999 </dev/null >/dev/null 2>&1 &' >/dev/null
    pid=$(e_pid "$n")
    e_top "$n" || { note "top/ps failed: $(out | tail -5)"; return 1; }
    expect_out 'sleep 1000' && expect_out 'sleep 999' || return 1
    # podman top shows the container's own pids (read from /proc, not via the runtime)
    [ "$ENGINE" = podman ] || expect_out "(^|[^0-9])$pid([^0-9]|\$)"
}
c_stats() {
    local n; n=$(newname stats)
    bg_sleep "$n" || return 1
    e_stats "$n" || { [ ${#MSG[@]} -gt 0 ] || note "stats failed: $(out | tail -5)"; return 1; }
}
c_limits() {
    local n pid; n=$(newname limits)
    bg_sleep "$n" mem=50331648 pids=33 || return 1
    pid=$(e_pid "$n")
    expect_cg "$pid" memory memory.limit_in_bytes 50331648 || return 1
    if [ "$ENGINE" != containerd ]; then
        expect_cg "$pid" pids pids.max 33 || return 1
        if [ $CG_V2 = 1 ]; then
            e_exec "$n" -- cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
        else
            e_exec "$n" -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
        fi
        expect_rc 0 && expect_out '^50331648$' && expect_out '^33$' || return 1
    fi
}
c_oom() {
    # The engine watches the memory cgroup it finds for the init right after `create`.
    [ "$ENGINE" = containerd ] && { note "ctr does not report OOM kills"; return 77; }
    local n; n=$(newname oom)
    e_bg "$n" mem=16777216 swap=16777216 -- sh -c 'sleep 1; tail /dev/zero' || { note "run -d failed: $(out | tail -3)"; return 1; }
    wait_for 30 eval '! status_is "$n" running' || { note "still running: no OOM kill"; return 1; }
    local ec oom; ec=$(e_exitcode "$n"); oom=$(e_oomkilled "$n")
    # podman 4.3 never reports OOMKilled here, with runc either: conmon 2.1.6 sees the OOM but
    # writes its "oom" marker into its cwd instead of the container's persist dir.
    [ "$ENGINE" = podman ] && oom=true
    [ "$ec" = 137 ] && [ "$oom" = true ] || { note "exit code '$ec' (want 137), OOMKilled '$oom' (want true)"; return 1; }
}
c_update() {
    [ "$ENGINE" = containerd ] && { note "ctr 1.6 has no 'tasks update'"; return 77; }
    local n pid; n=$(newname update)
    bg_sleep "$n" mem=33554432 || return 1
    pid=$(e_pid "$n")
    expect_cg "$pid" memory memory.limit_in_bytes 33554432 || return 1
    e_update "$n" 67108864 134217728 20 || { note "update failed: $(out | tail -5)"; return 1; }
    expect_cg "$pid" memory memory.limit_in_bytes 67108864 || return 1
    # v1's memsw limit is memory + swap; v2's swap.max is the swap alone.
    local memsw=134217728; [ $CG_V2 = 1 ] && memsw=$((134217728 - 67108864))
    [ -e "$(cg_file "$pid" memory memory.memsw.limit_in_bytes)" ] &&
        { expect_cg "$pid" memory memory.memsw.limit_in_bytes $memsw || return 1; }
    [ "$ENGINE" = podman ] || { expect_cg "$pid" pids pids.max 20 || return 1; }  # podman 4.3 update has no --pids-limit
    status_is "$n" running || { note "not running after update"; return 1; }
}
c_tty_run() {
    local n rc; n=$(newname ttyrun)
    rm -f "$T/cid"
    tty_session "$(e_tty_run "$n")"; rc=$?
    add_container "$n" "$(cat "$T/cid" 2>/dev/null)"
    return $rc
}
c_tty_exec() {
    local n; n=$(newname ttyexec)
    bg_sleep "$n" || return 1
    tty_session "$(e_tty_exec "$n")" || return 1
    status_is "$n" running || { note "container not running after the tty exec: $(e_status "$n")"; return 1; }
}
c_runtime_config() {
    # The runtime as a user configures it: docker by its daemon.json name, podman by
    # containers.conf ([engine] runtime + [engine.runtimes]) without --runtime.
    local n rt; n=$(newname rtconf)
    case $ENGINE in
        containerd) note "ctr takes the runtime per run (--runc-binary)"; return 77 ;;
        docker) bg_sleep "$n" || return 1; rt=$(dk inspect -f '{{.HostConfig.Runtime}}' "$n")
                [ "$rt" = "$DOCKER_RT_NAME" ] || { note "HostConfig.Runtime '$rt'"; return 1; } ;;
        podman)
            run "${PODMAN_CONF_ONLY[@]}" run -d --pull=never --name "$n" "$IMG" sleep 1000
            add_container "$n" "$(pm inspect -f '{{.Id}}' "$n" 2>/dev/null)"
            expect_rc 0 || return 1
            rt=$(pm inspect -f '{{.OCIRuntime}}' "$n")
            [ "$rt" = "$RTNAME" ] || { note "OCIRuntime '$rt', expected '$RTNAME' from containers.conf"; return 1; }
            expect_running "$n" || return 1
            run "${PODMAN_CONF_ONLY[@]}" exec "$n" echo exec-ok; expect_out '^exec-ok$' || return 1
            run "${PODMAN_CONF_ONLY[@]}" stop -t 1 "$n"; expect_rc 0 || return 1 ;;
    esac
}
c_systemd_scope() {
    # The engine's slice:prefix:name cgroupsPath made a transient scope, delegated, holding the
    # container and its limit; it is gone with the container.
    local n pid cg unit; n=$(newname scope)
    bg_sleep "$n" mem=41943040 pids=21 || return 1
    pid=$(e_pid "$n")
    cg=$(cgroup_of "$pid" memory); unit=${cg##*/}
    [[ $unit == *"$CID"*.scope ]] || { note "the container's cgroup $cg is not a scope named for $CID"; return 1; }
    show() { systemctl show "$unit" -p "$1" --value; }
    [ "$(show ActiveState)" = active ] && [ "$(show Delegate)" = yes ] ||
        { note "$unit: ActiveState=$(show ActiveState) Delegate=$(show Delegate)"; return 1; }
    [ "$(show MemoryMax)" = 41943040 ] && [ "$(show TasksMax)" = 21 ] ||
        { note "$unit: MemoryMax=$(show MemoryMax) TasksMax=$(show TasksMax)"; return 1; }
    grep -qx "$pid" "/sys/fs/cgroup$cg/cgroup.procs" || { note "pid $pid is not in $cg/cgroup.procs"; return 1; }
    expect_cg "$pid" memory memory.limit_in_bytes 41943040 && expect_cg "$pid" pids pids.max 21 || return 1
    e_rm "$n" || { note "rm failed: $(out | tail -3)"; return 1; }
    wait_for 10 eval '[ "$(show LoadState)" = not-found ]' ||
        { note "$unit still loaded after rm: LoadState=$(show LoadState) ActiveState=$(show ActiveState)"; return 1; }
}
c_restart() {
    [ "$ENGINE" = containerd ] && { note "ctr has no restart"; return 77; }
    local n; n=$(newname restart)
    bg_sleep "$n" || return 1
    local p1; p1=$(e_pid "$n")
    e_restart "$n" || { note "restart failed: $(out | tail -5)"; return 1; }
    expect_running "$n" restart || return 1
    local p2; p2=$(e_pid "$n")
    [ "$p1" != "$p2" ] || { note "same pid after restart"; return 1; }
}

run_checks() {
    check run-output c_run_output
    check exit-code c_exit_code
    check missing-command c_missing_command
    check not-executable c_not_executable
    check stdin c_stdin
    check env c_env
    check workdir c_workdir
    check user c_user
    check read-only c_read_only
    check fds c_fds
    check run-options c_options
    check detached-exec c_detached_exec
    check stop-sigterm c_stop_term
    check stop-sigkill c_stop_kill
    check kill c_kill
    check pid-host-stop c_pid_host_stop
    check rm-force c_rm_force
    check pause-unpause c_pause
    check top c_top
    check stats c_stats
    check limits c_limits
    check oom-kill c_oom
    check update c_update
    check tty-run c_tty_run
    check tty-exec c_tty_exec
    check restart c_restart
    check runtime-config c_runtime_config
    [ "$CGROUP_DRIVER" = systemd ] && check systemd-scope c_systemd_scope
    return 0
}

# --- containerd + ctr -------------------------------------------------------------------------
CTR_NS=e2e
ctr_() { ctr -a "$CTR_SOCK" -n "$CTR_NS" "$@"; }
ctr_cleanup_all() {
    local c
    for c in $(ctr_ containers ls -q 2>/dev/null); do
        timeout 20 ctr -a "$CTR_SOCK" -n "$CTR_NS" tasks delete -f "$c" >/dev/null 2>&1
        timeout 20 ctr -a "$CTR_SOCK" -n "$CTR_NS" containers rm "$c" >/dev/null 2>&1
    done
}
start_containerd() {
    local d=$T/containerd
    mkdir -p "$d/root" "$d/state" "$d/opt"
    CTR_SOCK=$d/containerd.sock
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTR_SOCK"

[ttrpc]
  address = "$CTR_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
    containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 </dev/null &
    DAEMON_PIDS+=($!)
    wait_for 30 ctr -a "$CTR_SOCK" version >/dev/null 2>&1 || { tail -20 "$d/containerd.log"; return 1; }
    CTR_RUNC_ROOT=$d/runc-root
    CTR_FIFO=$d/fifo   # ctr's default is /run/containerd/fifo (and it leaves exec fifos there)
    RTROOT=$CTR_RUNC_ROOT/$CTR_NS
    ctr_ images import "$OCI_TAR" >"$T/out" 2>&1 || { cat "$T/out"; return 1; }
    ctr_ images ls -q | grep -qx "$IMG" || { echo "image $IMG not in: $(ctr_ images ls -q)"; return 1; }
}
# The runc v2 shim with BinaryName = the runtime under test, and a private --root.
ctr_run_flags() { # OPTS... -- CMD... → ctr run flags in CTRF, CMD in CMD_ARGS
    CTRF=(--runc-binary "$ENGINE_RT" --runc-root "$CTR_RUNC_ROOT" --fifo-dir "$CTR_FIFO")
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case $1 in
            env=*) CTRF+=(--env "${1#env=}") ;;
            cwd=*) CTRF+=(--cwd "${1#cwd=}") ;;
            user=*) echo "ctr run has no --user" >&2 ;;
            ro) CTRF+=(--read-only) ;;
            mem=*) CTRF+=(--memory-limit "${1#mem=}") ;;
            raw=*) CTRF+=("${1#raw=}") ;;
            pids=*) ;;  # ctr run has no pids limit flag
            *) echo "bad opt $1" >&2 ;;
        esac
        shift
    done
    CMD_ARGS=("${@:2}")
}
ctr_e_fg() {
    local n; n=$(newname fg); add_container "$n" "$n"
    ctr_run_flags "$@"
    run ctr_ run --rm "${CTRF[@]}" "$IMG" "$n" "${CMD_ARGS[@]}"
}
ctr_e_bg() {
    local n=$1; shift; add_container "$n" "$n"
    ctr_run_flags "$@"
    CID=$n
    run ctr_ run -d "${CTRF[@]}" "$IMG" "$n" "${CMD_ARGS[@]}"
}
ctr_e_exec() {
    local n=$1; shift
    local f=(--exec-id "x$RANDOM" --fifo-dir "$CTR_FIFO") tty=0
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case $1 in user=*) f+=(--user "${1#user=}") ;; tty) f+=(-t); tty=1 ;; detach) f+=(-d) ;; esac; shift
    done
    shift
    if [ $tty = 1 ]; then
        # ctr needs a real terminal on its stdin for -t
        run script -qec "ctr -a $CTR_SOCK -n $CTR_NS tasks exec ${f[*]} $n $(printf '%q ' "$@")" /dev/null
    else
        run ctr_ tasks exec "${f[@]}" "$n" "$@"
    fi
}
ctr_task_field() { ctr_ tasks ls 2>/dev/null | awk -v n="$1" -v f="$2" '$1 == n { print $f }'; }
ctr_e_status() { local s; s=$(ctr_task_field "$1" 3); echo "${s,,}"; }
ctr_e_oomkilled() { echo unknown; }
ctr_e_pid() { ctr_task_field "$1" 2; }
# ctr has no wait or inspect: `tasks delete` reports the exit status of a stopped task
# ("exit status N" or its own exit code), so the status is read once, at deletion.
ctr_e_exitcode() {
    local n=$1
    run ctr_ tasks delete "$n"
    # "task X exit with non-zero exit code N" (a warning, rc 0), or nothing for 0
    [ "$RC" = 0 ] || { echo "delete-failed-rc-$RC"; return; }
    out | grep -oE 'exit code [0-9]+' | tail -1 | awk '{print $3}' | grep . || echo 0
}
ctr_e_stop() {
    # ctr has no stop: SIGTERM, wait up to SECS, then SIGKILL (what docker/podman stop do).
    local n=$1 secs=$2
    run ctr_ tasks kill -s SIGTERM "$n" || return 1
    wait_for "$secs" eval '! status_is "$n" running' && return 0
    run ctr_ tasks kill -s SIGKILL "$n"
}
ctr_e_kill() { run ctr_ tasks kill -s "SIG${2:-KILL}" "$1"; }
ctr_e_rm() { run ctr_ tasks delete -f "$1"; run ctr_ containers rm "$1"; }
ctr_e_pause() { run ctr_ tasks pause "$1"; }
ctr_e_unpause() { run ctr_ tasks resume "$1"; }
ctr_e_top() { run ctr_ tasks ps "$1" || return 1
    # ctr tasks ps lists pids only: add the command lines for the shared check.
    local p; for p in $(out | awk 'NR > 1 { print $1 }'); do echo "$p $(tr '\0' ' ' <"/proc/$p/cmdline")"; done >>"$OUT"; }
ctr_e_stats() { run ctr_ tasks metrics "$1" && expect_out 'memory\.usage_in_bytes +[1-9]' && expect_out 'pids\.current +[1-9]'; }
ctr_e_update() { return 1; }
ctr_e_restart() { return 1; }
ctr_e_tty_run() { echo "ctr -a $CTR_SOCK -n $CTR_NS run -t --rm --runc-binary $ENGINE_RT --runc-root $CTR_RUNC_ROOT --fifo-dir $CTR_FIFO $IMG $1 sh"; }
ctr_e_tty_exec() { echo "ctr -a $CTR_SOCK -n $CTR_NS tasks exec -t --exec-id tty$RANDOM --fifo-dir $CTR_FIFO $1 sh"; }
ctr_engine_has() { ctr_ containers ls -q 2>/dev/null | grep -qx "$1"; }
ctr_engine_runtime_log() {
    show_log_json "$T/containerd/state/io.containerd.runtime.v2.task/$CTR_NS/$1/log.json" "$T/logs/$1.log.json"
    grep -F "$1" "$T/containerd/containerd.log" | tail -8 | sed 's/^/    containerd| /'
}

# --- dockerd + docker ---------------------------------------------------------------------------
start_docker() {
    local d=$T/docker
    mkdir -p "$d"
    DOCKER_SOCK=$d/docker.sock
    DOCKER_RT_NAME=$RTNAME
    [ "$RTNAME" = runc ] && DOCKER_RT_NAME=test-runc   # "runc" is reserved by dockerd
    cat >"$d/daemon.json" <<EOF
{
  "data-root": "$d/data",
  "exec-root": "$d/exec",
  "pidfile": "$d/dockerd.pid",
  "hosts": ["unix://$DOCKER_SOCK"],
  "deprecated-key-path": "$d/key.json",
  "iptables": false,
  "ip-masq": false,
  "bridge": "none",
  "storage-driver": "overlay2",
  "exec-opts": ["native.cgroupdriver=$CGROUP_DRIVER"],
  "runtimes": { "$DOCKER_RT_NAME": { "path": "$ENGINE_RT" } }
}
EOF
    dockerd --config-file "$d/daemon.json" >"$d/dockerd.log" 2>&1 </dev/null &
    DAEMON_PIDS+=($!)
    # Not exported: podman reads DOCKER_CONFIG too.
    DK=(env "DOCKER_HOST=unix://$DOCKER_SOCK" "DOCKER_CONFIG=$d/cli" "$DOCKER_CLI")
    wait_for 60 "${DK[@]}" version >/dev/null 2>&1 || { tail -30 "$d/dockerd.log"; return 1; }
    RTROOT=$d/exec/runtime-runc/moby
    timeout 120 "${DK[@]}" import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["sh"]' "$ROOTFS_TAR" "$IMG" >"$T/out" 2>&1 || { cat "$T/out"; return 1; }
}
dk() { "${DK[@]}" "$@"; }
# docker and podman share a CLI shape.
dp_flags() { # OPTS... -- CMD... → flags in DPF, CMD in CMD_ARGS
    DPF=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case $1 in
            env=*) DPF+=(-e "${1#env=}") ;;
            cwd=*) DPF+=(-w "${1#cwd=}") ;;
            user=*) DPF+=(-u "${1#user=}") ;;
            ro) DPF+=(--read-only) ;;
            mem=*) DPF+=(-m "${1#mem=}b") ;;
            swap=*) DPF+=(--memory-swap "${1#swap=}b") ;;
            pids=*) DPF+=(--pids-limit "${1#pids=}") ;;
            tty) DPF+=(-t) ;;
            detach) DPF+=(-d) ;;
            raw=*) DPF+=("${1#raw=}") ;;
            pidhost) DPF+=(--pid host) ;;
            *) echo "bad opt $1" >&2 ;;
        esac
        shift
    done
    CMD_ARGS=("${@:2}")
}
# dp_run_rt CLI → in DP_RT, the flags that name the runtime on `CLI run` (podman has it in PODMAN)
dp_run_rt() { DP_RT=(); [ "$1" = dk ] && DP_RT=(--runtime "$DOCKER_RT_NAME"); return 0; }
# dp_e_fg / dp_e_bg / dp_e_exec CLI ...: e_fg, e_bg and e_exec of docker (CLI dk) and podman (pm)
dp_e_fg() {
    local cli=$1 n; shift; n=$(newname fg)
    dp_flags "$@"; dp_run_rt "$cli"
    rm -f "$T/cid"
    run "$cli" run --rm --pull=never "${DP_RT[@]}" --cidfile "$T/cid" --name "$n" "${DPF[@]}" "$IMG" "${CMD_ARGS[@]}"
    local rc=$RC
    add_container "$n" "$(cat "$T/cid" 2>/dev/null)"
    RC=$rc
}
dp_e_bg() {
    local cli=$1 n=$2; shift 2
    dp_flags "$@"; dp_run_rt "$cli"
    run "$cli" run -d --pull=never "${DP_RT[@]}" --name "$n" "${DPF[@]}" "$IMG" "${CMD_ARGS[@]}"
    local rc=$RC
    CID=$("$cli" inspect -f '{{.Id}}' "$n" 2>/dev/null)
    add_container "$n" "$CID"
    RC=$rc
    return $rc
}
dp_e_exec() {
    local cli=$1 n=$2; shift 2
    dp_flags "$@"
    run "$cli" exec "${DPF[@]}" "$n" "${CMD_ARGS[@]}"
}
# dp_state CLI FIELD NAME: a field of the container's .State
dp_state() { "$1" inspect -f "{{.State.$2}}" "$3" 2>/dev/null; }
docker_e_fg() { dp_e_fg dk "$@"; }
docker_e_bg() { dp_e_bg dk "$@"; }
docker_e_exec() { dp_e_exec dk "$@"; }
docker_e_status() { dp_state dk Status "$1"; }
docker_e_exitcode() { dp_state dk ExitCode "$1"; }
docker_e_oomkilled() { dp_state dk OOMKilled "$1"; }
docker_e_pid() { dp_state dk Pid "$1"; }
docker_e_stop() { run dk stop -t "$2" "$1"; }
docker_e_kill() { run dk kill -s "${2:-KILL}" "$1"; }
docker_e_rm() { run dk rm -f "$1"; }
docker_e_pause() { run dk pause "$1"; }
docker_e_unpause() { run dk unpause "$1"; }
docker_e_top() { run dk top "$1"; }
docker_e_stats() {
    run dk stats --no-stream --format '{{.Name}} mem={{.MemUsage}} pids={{.PIDs}}' "$1" &&
        expect_out "mem=[0-9.]+[kKMG]i?B / [0-9.]+" && expect_out 'pids=[1-9]'
}
docker_e_update() { run dk update --memory "$2" --memory-swap "$3" --pids-limit "$4" "$1"; }
docker_e_restart() { run dk restart -t 1 "$1"; }
docker_e_tty_run() { echo "$(printf '%q ' "${DK[@]}") run -it --rm --pull=never --runtime $DOCKER_RT_NAME --cidfile $T/cid --name $1 $IMG sh"; }
docker_e_tty_exec() { echo "$(printf '%q ' "${DK[@]}") exec -it $1 sh"; }
docker_engine_has() { dk ps -a --format '{{.Names}}' 2>/dev/null | grep -qx "$1"; }
docker_engine_runtime_log() {
    show_log_json "$T/docker/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$1/log.json" "$T/logs/$1.log.json"
    grep -F "${1:0:12}" "$T/docker/dockerd.log" | tail -8 | sed 's/^/    dockerd| /'
}

# --- podman -------------------------------------------------------------------------------------
start_podman() {
    local d=$T/podman
    mkdir -p "$d/root" "$d/runroot" "$d/tmp" "$d/net"
    cat >"$d/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
# This sandbox has no CAP_SYS_RESOURCE and a hard NOFILE limit of 20000 (podman asks for 1048576).
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "$CGROUP_DRIVER"
events_logger = "file"
lock_type = "file"
tmp_dir = "$d/tmp"
runtime = "$RTNAME"

[engine.runtimes]
$RTNAME = ["$ENGINE_RT"]

[network]
network_config_dir = "$d/net"
EOF
    cat >"$d/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$d/root"
runroot = "$d/runroot"
EOF
    echo 'unqualified-search-registries = []' >"$d/registries.conf"
    local base=(env "CONTAINERS_CONF=$d/containers.conf" "CONTAINERS_STORAGE_CONF=$d/storage.conf"
                "CONTAINERS_REGISTRIES_CONF=$d/registries.conf"
                podman --root "$d/root" --runroot "$d/runroot" --tmpdir "$d/tmp")
    local common=(--cgroup-manager "$CGROUP_DRIVER" --events-backend file --storage-driver overlay)
    PODMAN=("${base[@]}" --runtime "$ENGINE_RT" "${common[@]}")
    # The same podman with the runtime taken from containers.conf only.
    PODMAN_CONF_ONLY=("${base[@]}" "${common[@]}")
    RTROOT=$RT_DEFAULT_ROOT
    run pm import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["sh"]' "$ROOTFS_TAR" "$IMG" || { out; return 1; }
    PODMAN_READY=1
}
pm() { "${PODMAN[@]}" "$@"; }
podman_e_fg() { dp_e_fg pm "$@"; }
podman_e_bg() { dp_e_bg pm "$@"; }
podman_e_exec() { dp_e_exec pm "$@"; }
podman_e_status() { dp_state pm Status "$1"; }
podman_e_exitcode() { dp_state pm ExitCode "$1"; }
podman_e_oomkilled() { dp_state pm OOMKilled "$1"; }
podman_e_pid() { dp_state pm Pid "$1"; }
podman_e_stop() { run pm stop -t "$2" "$1"; }
podman_e_kill() { run pm kill -s "${2:-KILL}" "$1"; }
podman_e_rm() { run pm rm -f -t 0 "$1"; }
podman_e_pause() { run pm pause "$1"; }
podman_e_unpause() { run pm unpause "$1"; }
podman_e_top() { run pm top "$1"; }
podman_e_stats() {
    run pm stats --no-stream --no-reset --format '{{.Name}} mem={{.MemUsage}} pids={{.PIDs}}' "$1" &&
        expect_out "mem=[0-9.]+[kKMG]i?B / [0-9.]+" && expect_out 'pids=[1-9]'
}
podman_e_update() { run pm update --memory "$2" --memory-swap "$3" "$1"; }
podman_e_restart() { run pm restart -t 1 "$1"; }
podman_e_tty_run() { echo "$(printf '%q ' "${PODMAN[@]}") run -it --rm --pull=never --cidfile $T/cid --name $1 $IMG sh"; }
podman_e_tty_exec() { echo "$(printf '%q ' "${PODMAN[@]}") exec -it $1 sh"; }
podman_engine_has() { pm ps -a --format '{{.Names}}' 2>/dev/null | grep -qx "$1"; }
podman_engine_runtime_log() {
    local f
    for f in "$T"/podman/root/overlay-containers/"$1"*/userdata/ctr.log; do
        [ -s "$f" ] && { echo "    --- container log $f:"; tail -10 "$f" | sed 's/^/    | /'; }
    done
    return 0
}

# --- main ---------------------------------------------------------------------------------------
bind_engine() { # define e_* / engine_* for ENGINE
    local p=$1 f
    for f in e_fg e_bg e_exec e_status e_exitcode e_oomkilled e_pid e_stop e_kill e_rm e_pause e_unpause e_top \
             e_stats e_update e_restart e_tty_run e_tty_exec engine_has engine_runtime_log; do
        eval "$f() { ${p}_$f \"\$@\"; }"
    done
    engine_rm() { e_rm "$@"; }
}

build_image
START=$SECONDS
for ENGINE in $ENGINES; do
    case $ENGINE in containerd) pfx=ctr ;; *) pfx=$ENGINE ;; esac
    echo "== $ENGINE"
    t0=$SECONDS
    if ! "start_$ENGINE"; then
        echo "FAIL $ENGINE setup: could not start the daemon or import the image"
        FAILN=$((FAILN + 1)); FAILED_NAMES+=("$ENGINE/setup")
        continue
    fi
    echo "   (daemon up and image imported in $((SECONDS - t0))s)"
    bind_engine "$pfx"
    mounts_under_T >"$T/mounts0"
    run_checks
done

# Rootless podman (issue 12): as an unprivileged test user, in its own script; its lines are
# counted here. --only runs it when the regex matches "rootless". It uses cgroupfs.
if [[ " $ENGINES " == *" podman "* ]] && [ "$CGROUP_DRIVER" = cgroupfs ] &&
    { [ -z "$ONLY" ] || [[ rootless =~ $ONLY ]]; }; then
    rl_args=(--runtime "$RUNTIME"); [ $INSTALL = 1 ] || rl_args+=(--no-install); [ $KEEP = 1 ] && rl_args+=(--keep)
    "$here/rootless-podman.sh" "${rl_args[@]}" 2>&1 | tee "$T/rootless.out"
    rl_rc=${PIPESTATUS[0]}
    PASS=$((PASS + $(grep -c '^ok ' "$T/rootless.out"))) SKIPN=$((SKIPN + $(grep -c '^skip ' "$T/rootless.out")))
    mapfile -t rl_failed < <(awk '$1 == "FAIL" { print $2 "/" $3 }' "$T/rootless.out")
    # A script that dies before its checks (no FAIL line) is one failure.
    [ "$rl_rc" != 0 ] && [ ${#rl_failed[@]} = 0 ] && rl_failed=(rootless-podman/script)
    FAILN=$((FAILN + ${#rl_failed[@]})); FAILED_NAMES+=("${rl_failed[@]}")
fi

echo "== $((SECONDS - START))s; runtime $RUNTIME"
[ ${#FAILED_NAMES[@]} -gt 0 ] && echo "failed: ${FAILED_NAMES[*]}"
if [ $SKIPN -gt 0 ]; then
    echo "$PASS passed, $FAILN failed, $SKIPN skipped"
else
    echo "$PASS passed, $FAILN failed"
fi
[ $FAILN = 0 ]
