#!/usr/bin/env bash
# hack/cri/test.sh: the CRI-level test (issue 10): containerd's CRI plugin with a `hutch` runtime
# handler, driven by a small Rust CRI client (integration/cri) the way kubelet drives it.
#
#   hack/cri/test.sh [--runtime PATH] [--filter NAME] [--keep] [--no-install] [--debug-build]
#                    [--system-containerd]
#
# As root. Installs what is missing from Debian (containerd, containernetworking-plugins,
# busybox-static, gcc), then, all under `mktemp -d /tmp/hutch-cri.XXXXXX`:
#   - takes containerd 1.7 (CRI user namespaces, which 1.6 ignores) from Debian trixie's package,
#     fetched once with a private apt configuration (the host's sources and its containerd 1.6
#     stay as they are) and unpacked into $HUTCH_CRI_CACHE (default /var/cache/hutch-cri), then
#     reused; when it cannot be fetched, the run falls back to the host's containerd and the
#     user-namespace test reports SKIP with the reason;
#   - builds two images as OCI archives: a pause image (hack/cri/pause.c, static) and a busybox
#     image (hack/mkbundle.sh's rootfs), and imports them with `ctr -n k8s.io images import`;
#     nothing is ever pulled (the CRI sandbox_image is the local pause image);
#   - starts a private containerd (own root, state, unix sockets, CNI config and IPAM dir) with the
#     CRI plugin, a runtime handler `hutch` (io.containerd.runc.v2, BinaryName = the runtime under
#     test, its own Root) as the default, and CNI loopback + bridge, inside a new network namespace
#     (`unshare --net`, only the network namespace: the bridge and the stream server never touch
#     the host's network, and mounts stay in the host's mount namespace, which the Bidirectional
#     propagation check needs);
#   - runs `cargo test --release --test cri` with HUTCH_CRI_* pointing at it;
#   - tears everything down: pods through CRI, containerd by pid, mounts under the work dir, the
#     pods' netns files, the work dir. It fails if anything of ours is left (processes, mounts,
#     netns, cgroups, runtime state).
#
#   --runtime PATH   the runtime under test (default: $HUTCH, else target/x86_64-unknown-linux-gnu/release/hutch).
#                    `--runtime /usr/sbin/runc` proves the test itself.
#   --filter NAME    pass NAME to the test binary (a test name substring).
#   --keep           keep the work dir (containerd log, runtime calls) at the end.
#   --no-install     do not apt-get anything; fail if a tool is missing.
#   --debug-build    build the test with the debug profile (faster to build while iterating).
#   --system-containerd  use the host's containerd (Debian bookworm: 1.6) instead of trixie's 1.7.
#
# Exit status: cargo test's, or 1 when the setup failed or something was left behind.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

ARGS=("$@")
RUNTIME=${HUTCH:-$repo/target/x86_64-unknown-linux-gnu/release/hutch}
FILTER=
KEEP=0
INSTALL=1
PROFILE=(--release)
SYSTEM_CTRD=0
CACHE=${HUTCH_CRI_CACHE:-/var/cache/hutch-cri}
while [ $# -gt 0 ]; do
    case $1 in
        --runtime) RUNTIME=$2; shift 2 ;;
        --runtime=*) RUNTIME=${1#*=}; shift ;;
        --filter) FILTER=$2; shift 2 ;;
        --filter=*) FILTER=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --debug-build) PROFILE=(); shift ;;
        --system-containerd) SYSTEM_CTRD=1; shift ;;
        -h|--help) sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "cri/test.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "cri/test.sh: $*" >&2; exit 1; }
# shellcheck source=hack/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
case $RUNTIME in /*) ;; *) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;; esac
[ -x "$RUNTIME" ] || die "runtime $RUNTIME is not an executable (build it: cargo build --release)"

# A user-namespaced container gets the host's /dev/null bound in (it cannot mknod), and its root
# (an unmapped host uid) opens it for writing: with a host /dev/null that is not 0666 (seen on a
# test VM whose /dev/null had become 0755) every runtime fails ("open /dev/null: permission
# denied"). Do not touch the host's node: rerun in a private mount namespace where a 0666 node of
# our own is bound over /dev/null. Everything the tests check from "the host" is then checked from
# that namespace, which is where containerd and the runtime run.
if [ "$(stat -c '%a %t:%T' /dev/null)" != "666 1:3" ] && [ -z "${HUTCH_CRI_DEVNULL:-}" ]; then
    echo "== WARNING: the host's /dev/null is mode $(stat -c %a /dev/null), not 0666 (fix the host);" \
        "running in a private mount namespace with a 0666 /dev/null of our own"
    nulldir=$(mktemp -d /tmp/hutch-cri-null.XXXXXX)
    mknod -m 666 "$nulldir/null" c 1 3 || die "mknod $nulldir/null"
    HUTCH_CRI_DEVNULL=$nulldir/null unshare --mount --propagation private -- \
        sh -c 'mount --bind "$HUTCH_CRI_DEVNULL" /dev/null && exec "$@"' sh "${BASH_SOURCE[0]}" "${ARGS[@]}"
    rc=$?
    rm -rf "$nulldir"
    exit $rc
fi

# --- packages -------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
need=()
want() { [ -e "$1" ] || need+=("$2"); }
want /usr/bin/containerd containerd
want /usr/bin/ctr containerd
want /usr/bin/containerd-shim-runc-v2 containerd
want /usr/lib/cni/bridge containernetworking-plugins
want /usr/lib/cni/loopback containernetworking-plugins
want /usr/lib/cni/host-local containernetworking-plugins
want /usr/bin/gcc gcc
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)   # the static libc for pause
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# apt checks trixie's signed Release with these (for the containerd 1.7 fetch below).
command -v gpgv >/dev/null 2>&1 || need+=(gpgv)
want /usr/share/keyrings/debian-archive-keyring.gpg debian-archive-keyring
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
    [ $INSTALL = 1 ] || die "missing packages: ${need[*]}"
    apt_install /tmp/hutch-cri-apt.log "${need[@]}" || die "apt-get install failed"
fi

# --- containerd 1.7 from Debian trixie (cached) --------------------------------------------------
# bookworm's containerd 1.6 ignores a pod's userns_options; trixie's 1.7 implements them. Its Go
# binaries need only glibc >= 2.34 (bookworm has 2.36). Fetched with a private apt configuration
# (own sources list, lists and cache dirs), so the host's apt state and packages are untouched.
CTRD_BIN=/usr/bin
USERNS_SKIP=
fetch_containerd17() {
    local dir=$CACHE/containerd-trixie apt
    if [ -x "$dir/root/usr/bin/containerd" ] && "$dir/root/usr/bin/containerd" --version >/dev/null 2>&1; then
        CTRD_BIN=$dir/root/usr/bin; return 0
    fi
    # One fetch at a time (parallel CI jobs share the cache); the winner's result is reused.
    mkdir -p "$CACHE" && exec 9>"$CACHE/.lock" && flock -w 600 9 || { echo "cannot lock $CACHE/.lock"; return 1; }
    if [ -x "$dir/root/usr/bin/containerd" ] && "$dir/root/usr/bin/containerd" --version >/dev/null 2>&1; then
        CTRD_BIN=$dir/root/usr/bin; exec 9>&-; return 0
    fi
    rm -rf "$dir"; mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/dl" || return 1
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$dir/sources.list"
    apt=(-o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$dir/lists"
         -o Dir::Cache="$dir/cache" -o Acquire::Languages=none -o Acquire::Retries=0 -o Acquire::http::Timeout=15
         -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
         -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
         -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false)
    # apt's download sandbox user (_apt) must be able to write /dev/null; where it cannot (some
    # containers), fetch as root: the files are still checked against the signed Release.
    [ "$(stat -c %a /dev/null)" = 666 ] || apt+=(-o APT::Sandbox::User=root)
    [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || { echo "debian-archive-keyring is not installed"; return 1; }
    command -v gpgv >/dev/null 2>&1 || { echo "gpgv is not installed"; return 1; }
    echo "== fetching containerd from Debian trixie into $dir"
    timeout 120 apt-get "${apt[@]}" update >"$dir/apt.log" 2>&1 </dev/null || { tail -3 "$dir/apt.log"; return 1; }
    # apt-get update exits 0 on a failed fetch; its first error line is the reason given.
    if grep -q '^E:\|^W: GPG error\|^W: Failed\|^Err:' "$dir/apt.log"; then
        grep -m1 '^E:\|^W: GPG error\|^W: Failed' "$dir/apt.log"; return 1
    fi
    (cd "$dir/dl" && timeout 300 apt-get "${apt[@]}" download containerd) >>"$dir/apt.log" 2>&1 </dev/null ||
        { tail -3 "$dir/apt.log"; return 1; }
    dpkg-deb -x "$dir"/dl/containerd_*.deb "$dir/root" || return 1
    "$dir/root/usr/bin/containerd" --version || return 1
    # The .deb and the indexes are not needed once unpacked.
    rm -rf "$dir/dl" "$dir/lists" "$dir/cache"
    exec 9>&-
    CTRD_BIN=$dir/root/usr/bin
}
if [ $SYSTEM_CTRD = 1 ]; then
    USERNS_SKIP="--system-containerd: the host's containerd was asked for"
else
    flog=$(mktemp /tmp/hutch-cri-fetch.XXXXXX)
    if fetch_containerd17 >"$flog" 2>&1; then
        cat "$flog"
    else
        sed 's/^/   | /' "$flog"
        USERNS_SKIP="containerd 1.7 could not be fetched from Debian trixie ($(grep -v '^==' "$flog" | tail -1)); the host's containerd ran the tests"
        echo "== $USERNS_SKIP"
    fi
    rm -f "$flog"
    exec 9>&-   # the fetch lock, if a failed fetch still holds it
fi

# --- work dir, cleanup ----------------------------------------------------------------------
T=$(mktemp -d /tmp/hutch-cri.XXXXXX)
chmod 755 "$T"
cd "$T" || die "cd $T"
D=$T/containerd
SOCK=$D/containerd.sock
RTROOT=$T/runtime-root
CGPARENT=/hutch-cri-${T##*.}
NS=k8s.io
CTRD_PID=
# The pods' netns files (containerd 1.6 always puts them in /var/run/netns): ours are the new ones.
NETNS_DIR=/var/run/netns
NETNS_DIR_EXISTED=0; [ -d $NETNS_DIR ] && NETNS_DIR_EXISTED=1
ls -1 $NETNS_DIR 2>/dev/null | sort >"$T/netns0"
CNI_DIR_EXISTED=0; [ -d /var/lib/cni ] && CNI_DIR_EXISTED=1

ctr_() { timeout -k 5 60 "$CTRD_BIN/ctr" -a "$SOCK" -n "$NS" "$@"; }
new_netns() { ls -1 $NETNS_DIR 2>/dev/null | sort | comm -13 "$T/netns0" -; }

LEFT=()
cleanup() {
    local rc=$?
    set +e
    cd /
    # Whatever the tests left: remove it through containerd, so the shims clean up after themselves.
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        local c t
        for c in $(ctr_ containers ls -q 2>/dev/null); do
            LEFT+=("container $c (the test did not remove it)")
            ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1
            ctr_ tasks delete -f "$c" >/dev/null 2>&1
            ctr_ containers rm "$c" >/dev/null 2>&1
        done
        kill -TERM "$CTRD_PID"
        for t in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$CTRD_PID" 2>/dev/null
    fi
    # Processes of this run still alive (shims, a runtime's init): their command lines name $T.
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T/"; then
            LEFT+=("process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-120)")
            kill -KILL "${p#/proc/}" 2>/dev/null
        fi
    done
    # Leftover checks: the runtime's state, cgroups under our parent, processes in them, mounts
    # under the work dir, netns files.
    local f
    while read -r f; do LEFT+=("runtime state $f"); done < <(find "$RTROOT" -mindepth 2 -maxdepth 2 2>/dev/null)
    # The pods' parent cgroups (named by the test) are the engine's to make and, as kubelet would,
    # ours to remove; a container's own (named by its 64-hex id) is the runtime's.
    while read -r f; do
        case ${f##*/} in ????????????????????????????????????????????????????????????????) LEFT+=("cgroup $f") ;; esac
        while read -r p; do LEFT+=("process $p in $f"); kill -KILL "$p" 2>/dev/null; done <"$f/cgroup.procs"
    done < <(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*${CGPARENT}*" 2>/dev/null)
    sleep 0.2
    find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*${CGPARENT}*" -exec rmdir {} \; 2>/dev/null
    while read -r f; do
        LEFT+=("netns $NETNS_DIR/$f"); umount "$NETNS_DIR/$f" 2>/dev/null; rm -f "${NETNS_DIR:?}/$f"
    done < <(new_netns)
    [ $NETNS_DIR_EXISTED = 0 ] && rmdir $NETNS_DIR 2>/dev/null
    # libcni's result cache (/var/lib/cni/results) when the test made /var/lib/cni.
    [ $CNI_DIR_EXISTED = 0 ] && [ -d /var/lib/cni ] && rm -rf /var/lib/cni
    local m
    while read -r m; do
        # The propagation test unmounts its own shared bind (and what it mounted under it) itself.
        LEFT+=("mount $m")
        umount -l "$m" 2>/dev/null
    done < <(awk -v t="$T" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    if [ ${#LEFT[@]} -gt 0 ]; then
        echo "== left behind after the tests (a failure):"
        printf '   %s\n' "${LEFT[@]}"
        [ "$rc" = 0 ] && rc=1
    fi
    if [ "$rc" != 0 ] && [ -f "$D/containerd.log" ]; then
        echo "== containerd log (errors, last 30):"
        grep -E 'level=(error|warning)' "$D/containerd.log" | tail -30 | sed 's/^/   | /'
        echo "== runtime calls (last 20):"
        tail -20 "$T/runtime-calls.log" 2>/dev/null | sed "s|$T|\$T|g; s/^/   | /" | cut -c1-240
        echo "== runtime logs (errors):"
        grep -h '"error"' "$T"/logs/*.log.json 2>/dev/null | tail -10 | sed 's/^/   | /'
    fi
    if [ $KEEP = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the runtime the shim calls: a wrapper that records each call, then execs the runtime -------
RTNAME=$(basename "$RUNTIME")
ENGINE_RT=$T/rt/$RTNAME
mkdir -p "$T/rt"
cat >"$ENGINE_RT" <<EOF
#!/bin/sh
printf '%s\n' "[\$\$] \$*" >>$T/runtime-calls.log
# The shim deletes the --log file and the bundle: keep copies for the failure report.
prev=
for a in "\$@"; do
    if [ "\$prev" = --log ] && [ -f "\$a" ]; then
        d=\${a%/*}; /bin/cp -f "\$a" "$T/logs/\${d##*/}.log.json" 2>/dev/null
    fi
    if [ "\$prev" = --bundle ]; then /bin/cp -f "\$a/config.json" "$T/logs/\${a##*/}.config.json" 2>/dev/null; fi
    prev=\$a
done
exec $RUNTIME "\$@"
EOF
chmod 755 "$ENGINE_RT"
echo "== runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); work dir $T"

# --- images ---------------------------------------------------------------------------------
ARCH=$(dpkg --print-architecture)
sha() { sha256sum "$1" | cut -d' ' -f1; }
# oci_image NAME LAYER_TAR CONFIG_JSON OUT_TAR: an OCI image layout archive with one layer.
oci_image() {
    local name=$1 layer=$2 config=$3 out=$4 o
    o=$(mktemp -d "$T/oci.XXXX")
    mkdir -p "$o/blobs/sha256"
    local ld ls cd cs md ms
    ld=$(sha "$layer"); ls=$(stat -c %s "$layer"); cp "$layer" "$o/blobs/sha256/$ld"
    printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$ARCH" "$config" "$ld" >"$o/config.json"
    cd=$(sha "$o/config.json"); cs=$(stat -c %s "$o/config.json"); mv "$o/config.json" "$o/blobs/sha256/$cd"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cd" "$cs" "$ld" "$ls" >"$o/manifest.json"
    md=$(sha "$o/manifest.json"); ms=$(stat -c %s "$o/manifest.json"); mv "$o/manifest.json" "$o/blobs/sha256/$md"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
        "$md" "$ms" "$ARCH" "$name" >"$o/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
    tar -C "$o" -cf "$out" oci-layout index.json blobs || die "tar $out failed"
}
PAUSE_IMG=localhost/hutch-cri/pause:latest
BUSYBOX_IMG=localhost/hutch-cri/busybox:latest
PATH_ENV='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
mkdir -p "$T/img/pause"
gcc -static -Os -s -Wall -Werror -o "$T/img/pause/pause" "$here/pause.c" || die "building pause failed"
tar --numeric-owner --owner=0 --group=0 -C "$T/img/pause" -cf "$T/img/pause.layer.tar" pause || die tar
oci_image "$PAUSE_IMG" "$T/img/pause.layer.tar" "{$PATH_ENV,\"Entrypoint\":[\"/pause\"]}" "$T/img/pause.tar"
NO_CONFIG=1 "$repo/hack/mkbundle.sh" "$T/img/busybox" >/dev/null || die "mkbundle failed"
tar --numeric-owner -C "$T/img/busybox/rootfs" -cf "$T/img/busybox.layer.tar" . || die tar
oci_image "$BUSYBOX_IMG" "$T/img/busybox.layer.tar" "{$PATH_ENV,\"Cmd\":[\"sh\"]}" "$T/img/busybox.tar"

# --- containerd with CRI ------------------------------------------------------------------------
mkdir -p "$D/root" "$D/state" "$D/opt" "$T/cni/net.d" "$T/cni/ipam" "$RTROOT" "$T/work"
cat >"$D/config.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$D/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # The pause container gets oom_score_adj -998, which needs CAP_SYS_RESOURCE (this sandbox has
  # none): keep every container's at or above containerd's own, as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "hutch"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hutch]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hutch.options]
        BinaryName = "$ENGINE_RT"
        Root = "$RTROOT"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni/net.d"
    max_conf_num = 1
EOF
cat >"$T/cni/net.d/10-hutch-cri.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "hutch-cri",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "hutchcri0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$T/cni/ipam",
        "ranges": [[{ "subnet": "10.88.77.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF
# Only a new network namespace (lo up): the CNI bridge and the stream server's port live there.
# PATH: containerd finds the shim (containerd-shim-runc-v2) of its own version first.
PATH=$CTRD_BIN:$PATH unshare --net -- sh -c 'ip link set lo up 2>/dev/null || busybox ip link set lo up; exec "$@"' sh \
    "$CTRD_BIN/containerd" --config "$D/config.toml" >"$D/containerd.log" 2>&1 </dev/null &
CTRD_PID=$!
for _ in $(seq 150); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ version >/dev/null 2>&1 || { tail -20 "$D/containerd.log"; die "containerd did not come up"; }
[ "$(readlink /proc/$CTRD_PID/ns/net)" != "$(readlink /proc/self/ns/net)" ] || die "containerd is in the host's network namespace"
for img in pause busybox; do
    ctr_ images import "$T/img/$img.tar" >"$T/out" 2>&1 || { cat "$T/out"; die "import of $img failed"; }
done
CTRD_VERSION=$("$CTRD_BIN/containerd" --version | awk '{print $3}')
echo "== containerd $CTRD_VERSION (pid $CTRD_PID, own netns) up, images imported"

# --- the test -----------------------------------------------------------------------------------
export HUTCH_CRI_SOCKET=$SOCK
export HUTCH_CRI_IMAGE=$BUSYBOX_IMG
export HUTCH_CRI_RUNTIME_ROOT=$RTROOT/$NS
export HUTCH_CRI_CGROUP_PARENT=$CGPARENT
export HUTCH_CRI_WORKDIR=$T/work
export HUTCH_CRI_LOGDIR=$T/logs
export HUTCH_CRI_ENGINE_PID=$CTRD_PID
export HUTCH_CRI_USERNS_SKIP=$USERNS_SKIP
mkdir -p "$T/logs"
cd "$repo" || die "cd $repo"
# --nocapture: the SKIP lines (e.g. a feature the engine lacks) show in CI's log.
args=(--test-threads=2 --nocapture)
[ -n "$FILTER" ] && args=("$FILTER" "${args[@]}")
cargo test "${PROFILE[@]}" --test cri -- "${args[@]}"
