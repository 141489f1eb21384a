#!/usr/bin/env bash
# hack/systemd-vm.sh [options] [--] COMMAND [ARG...]
#
# Runs COMMAND as root inside a throwaway QEMU VM whose PID 1 is systemd, on a pure cgroup v2
# kernel (systemd's unified hierarchy), with the D-Bus system bus up: `systemctl`, `busctl`,
# `systemd-run --scope`, /run/dbus/system_bus_socket and /run/systemd/private all work. It passes
# COMMAND's stdout, stderr and exit status back. This host has no systemd and hybrid cgroups;
# the systemd cgroup driver (`--systemd-cgroup`), the engines with it, and AppArmor are tested
# here (hack/test.sh).
#
# The guest root is a Debian bookworm tree (PACKAGES below) built once with mmdebstrap from the
# mirror apt uses here into a cache outside the source tree, and rebuilt when the package list
# changes. Each run mounts it read-only (virtio-9p) under a tmpfs overlay, so nothing a run does
# survives it. Directories given with --share are mounted read-write at the same path (share the
# repository to run target/*/hutch and the integration test binary: the tree's glibc is the
# host's). One argument is run as a shell script, several are an argv.
#
# Options:
#   --share DIR      mount host DIR read-write at the same path in the guest (repeatable)
#   --env K=V        set an environment variable for COMMAND (repeatable)
#   --timeout SECS   kill the VM after SECS (default 600); exit status 124
#   --mem SIZE       guest memory (default 1G)       --cpus N   guest CPUs (default 2)
#   --accel MODE     auto (default: KVM if hack/vm-run.sh saw it boot a guest here), kvm or tcg
#   --console        copy the guest console (kernel and systemd messages) to stderr
#   --time           report on stderr when the command started and how long the run took
#   --cgroup-v1      boot systemd on cgroup v1 (its "legacy" hierarchy, every controller a v1 one)
#                    instead of pure v2
#   --setup          only build the tree, the kernel and the initramfs
#
# Exit status: COMMAND's; 124 on timeout; 125 when the VM could not run the command.
# Self-check (prints "running", the bus names, scope-ok, 0::/system.slice/hutch-vm-cmd.service;
# exits 3):
#   hack/systemd-vm.sh -- sh -c 'systemctl is-system-running --wait; busctl --system list | head
#       systemd-run --scope -p MemoryMax=64M true && echo scope-ok; cat /proc/self/cgroup; exit 3'
# The integration tests (their state on a tmpfs: 9p lacks renameat2(RENAME_NOREPLACE)):
#   hack/systemd-vm.sh --mem 2G --share "$PWD" -- "mount -t tmpfs tmpfs $PWD/target/tmp &&
#       $PWD/target/debug/deps/integration-HASH --test-threads=2 cgroups::"
# Environment: HUTCH_SYSTEMD_VM_CACHE (default /var/cache/hutch-systemd-vm: the tree and the
# initramfs), HUTCH_VM_CACHE (hack/vm-run.sh's cache: the kernel is shared with it),
# HUTCH_VM_BOOT_TIMEOUT (default 180: a guest whose command has not started by then is rebooted).
# Remove the cache to take the mirror's newer packages.
#
# Design, and why:
# - The kernel is hack/vm-run.sh's (its `--setup` fetches and caches the Debian kernel; its ELF
#   vmlinux, started at the PVH entry point, is used when that cache has one). Its module tree is
#   hard-linked into ours and indexed with the tree's own depmod, so modules load on demand
#   (overlay, veth, ...) with kmod as on any Debian host.
# - The tree is shared over 9p (cache=loose) rather than as a disk image: no image to make or
#   keep in step with the tree (a disk image might boot faster; not measured).
# - A small busybox initramfs mounts the tree (9p, read-only) and a tmpfs as an overlay, writes
#   this run's units and configuration into the overlay, mounts the shares and switch_roots into
#   /lib/systemd/systemd. The VM's configuration lives there, not in the tree, so changing it
#   costs no rebuild. Units that only slow a TCG boot (getty, timers, time sync, network waits)
#   are masked; engines the packages enable (containerd, docker) are disabled in the tree:
#   tests start them with systemctl.
# - COMMAND runs from hutch-vm-cmd.service (pulled in by systemd.wants=, ordered after
#   dbus.service and basic.target, Type=exec with no default dependencies so the boot completes
#   and `systemctl is-system-running --wait` returns while it runs). It writes stdout, stderr and
#   the status to their own serial ports (ttyS0 is the console) and powers the guest off.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${HUTCH_SYSTEMD_VM_CACHE:-/var/cache/hutch-systemd-vm}
VMCACHE=${HUTCH_VM_CACHE:-/var/cache/hutch-vm}
BOOT_TIMEOUT=${HUTCH_VM_BOOT_TIMEOUT:-180}
QEMU=qemu-system-x86_64
SUITE=bookworm
# The guest's packages (mmdebstrap --variant=minbase adds the essential set). Extend freely:
# the tree is rebuilt when this list changes.
PACKAGES=(
    systemd dbus kmod udev util-linux procps iproute2 busybox-static passwd uidmap jq
    libpam-systemd
    runc containerd criu
    docker.io podman conmon tmux apparmor
)
# Units the packages enable that a test starts itself (unknown names are ignored).
DISABLE_UNITS=(containerd.service docker.service docker.socket)
TIMEOUT=600 MEM=1G CPUS=2 ACCEL=auto CONSOLE=0 SETUP=0 TIME=0 CGROUP_V1=0
SHARES=() ENVS=()

die() { echo "systemd-vm: $*" >&2; exit 125; }
note() { echo "systemd-vm: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --share) SHARES+=("$(readlink -f "$2")"); shift 2 ;;
        --env) ENVS+=("$2"); shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --accel) ACCEL=$2; shift 2 ;;
        --console) CONSOLE=1; shift ;;
        --time) TIME=1; shift ;;
        --cgroup-v1) CGROUP_V1=1; shift ;;
        --setup) SETUP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || [ $SETUP = 1 ] || die "no command given (see --help)"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout takes seconds"
[[ $BOOT_TIMEOUT =~ ^[0-9]+$ ]] || die "HUTCH_VM_BOOT_TIMEOUT takes seconds"
case $ACCEL in auto|kvm|tcg) ;; *) die "--accel: auto, kvm or tcg" ;; esac
for s in "${SHARES[@]}"; do [ -d "$s" ] || die "--share $s: not a directory"; done
for e in "${ENVS[@]}"; do [[ $e == *=* ]] || die "--env $e: expected KEY=VALUE"; done
[ "$(id -u)" = 0 ] || die "must run as root (the tree keeps its owners; 9p passthrough)"

# ----------------------------------------------------------------------------- setup ----
# The kernel, from hack/vm-run.sh's cache (it installs qemu and fetches the kernel if needed).
prepare_kernel() {
    HUTCH_VM_CACHE=$VMCACHE "$HERE/vm-run.sh" --setup >/dev/null 2>&1 ||
        HUTCH_VM_CACHE=$VMCACHE "$HERE/vm-run.sh" --setup || die "hack/vm-run.sh --setup failed"
    KVER=$(ls "$VMCACHE/kernel/lib/modules")
    KMODS=$VMCACHE/kernel/lib/modules/$KVER
    KERNEL=$VMCACHE/vmlinux-$KVER
    [ -s "$KERNEL" ] || KERNEL=$VMCACHE/kernel/boot/vmlinuz-$KVER
    [ -s "$KERNEL" ] || die "no kernel in $VMCACHE"
}

# mmdebstrap takes the mirrors apt uses here (hack/debian-mirrors.sh).
# shellcheck source=hack/debian-mirrors.sh
. "$HERE/debian-mirrors.sh"
mirrors() {
    debian_mirrors "$SUITE" || die "no Debian mirror configured in /etc/apt"
}

# The Debian tree: CACHE/rootfs-KEY, KEY a hash of what went into it. Built beside and renamed
# into place, so a half-built tree is never used; older trees are removed.
prepare_tree() {
    local key tmp m t
    mapfile -t m < <(mirrors)
    key=$(printf '%s\n' "tree v1" "$SUITE" "${PACKAGES[@]}" "${m[@]}" | sha256sum | cut -c1-16)
    TREE=$CACHE/rootfs-$key
    if [ ! -d "$TREE" ]; then
        command -v mmdebstrap >/dev/null || {
            note "installing mmdebstrap"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2 ||
                die "could not install mmdebstrap"
        }
        note "building the $SUITE tree in $TREE (once; about a minute)"
        tmp=$CACHE/rootfs-$key.new
        rm -rf "$tmp"
        local pkgs
        pkgs=$(IFS=,; echo "${PACKAGES[*]}")
        mmdebstrap --variant=minbase --include="$pkgs" \
            --aptopt='APT::Install-Recommends "false"' \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
            "$SUITE" "$tmp" "${m[@]}" >&2 || { rm -rf "$tmp"; die "mmdebstrap failed"; }
        for t in "${DISABLE_UNITS[@]}"; do
            systemctl --root="$tmp" disable "$t" >/dev/null 2>&1 || rm -f "$tmp"/etc/systemd/system/*.wants/"$t"
        done
        # An empty machine-id: the initramfs writes a fresh one each boot.
        : > "$tmp/etc/machine-id"
        echo hutch-systemd-vm > "$tmp/etc/hostname"
        rm -rf "$tmp/var/cache/apt/archives"/*.deb "$tmp/var/lib/apt/lists"/*_Packages
        mv "$tmp" "$TREE"
        for t in "$CACHE"/rootfs-*; do [ "$t" = "$TREE" ] || rm -rf "$t"; done
    fi
    # The kernel's modules, hard-linked (no copy) and indexed by the tree's own depmod.
    if [ ! -s "$TREE/usr/lib/modules/$KVER/modules.dep.bin" ]; then
        rm -rf "$TREE/usr/lib/modules/$KVER"
        mkdir -p "$TREE/usr/lib/modules"
        cp -al "$KMODS" "$TREE/usr/lib/modules/$KVER"
        # Only the package's own lists stay; the indexes (busybox depmod's) are redone here.
        find "$TREE/usr/lib/modules/$KVER" -maxdepth 1 -name 'modules.*' ! -name modules.order \
            ! -name 'modules.builtin*' -delete
        chroot "$TREE" /sbin/depmod "$KVER" || die "depmod $KVER in $TREE failed"
    fi
}

# Stage 1 of the guest, from the initramfs: the overlay root, this run's units, the shares,
# then systemd. Serial ports: ttyS0 console, ttyS1 stdout, ttyS2 stderr, ttyS3 status.
read -r -d '' INIT <<'EOF' || true
#!/bin/sh
export PATH=/bin
fatal() { echo "systemd-vm init: FATAL: $*" > /dev/console; echo "FATAL $*" > /dev/ttyS3; poweroff -f; }
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
. /vm/conf
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe $m || fatal "modprobe $m"; done
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 tree /lower || fatal "9p tree"
mount -t tmpfs -o mode=0755 rw /rw && mkdir /rw/upper /rw/work || fatal "tmpfs upper"
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
    fatal "overlay root"
R=/newroot
mkdir -p $R/.vm && cp /vm/cmd /vm/conf /vm/run $R/.vm/ && chmod 755 $R/.vm/run
tr -d '-' < /proc/sys/kernel/random/uuid > $R/etc/machine-id
S=$R/etc/systemd/system
for u in $MASK; do ln -sf /dev/null $S/$u; done
mkdir -p $R/etc/systemd/system-generators
for g in $MASK_GENERATORS; do ln -sf /dev/null $R/etc/systemd/system-generators/systemd-$g-generator; done
cat > $S/hutch-vm-cmd.service <<UNIT
[Unit]
Description=hutch VM command
DefaultDependencies=no
Wants=dbus.service
After=basic.target dbus.service systemd-journald.socket
[Service]
Type=exec
ExecStart=/.vm/run
StandardInput=null
StandardOutput=journal+console
# The runner powers off itself; should it die first, the guest must still stop.
SuccessAction=poweroff-force
FailureAction=poweroff-force
UNIT
i=0
while [ $i -lt $NSHARE ]; do
    eval "d=\$SHARE_$i"
    mkdir -p "$R$d" && mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=512000 share$i "$R$d" ||
        fatal "9p share $d"
    i=$((i + 1))
done
for d in proc sys dev; do mount --move /$d $R/$d; done
exec switch_root $R /lib/systemd/systemd
EOF

# Stage 2, the unit's ExecStart: COMMAND with a login-like root environment, then poweroff.
read -r -d '' RUNNER <<'EOF' || true
#!/bin/sh
. /.vm/conf
for t in ttyS1 ttyS2 ttyS3; do stty -F /dev/$t raw -echo 2>/dev/null; done
cd "$CWD" 2>/dev/null || cd /root
echo "BOOTED $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS3
eval "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root \
    LOGNAME=root SHELL=/bin/sh TERM=dumb LANG=C.UTF-8 $ENVS /bin/sh /.vm/cmd" < /dev/null > /dev/ttyS1 2> /dev/ttyS2
rc=$?
echo "DONE $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS3
echo "EXIT=$rc" > /dev/ttyS3
sync
systemctl poweroff --force --force || poweroff -f
EOF

# Units masked for a fast, quiet TCG boot (each process start costs there). Without udev no unit
# may wait for a .device (none does here: no fstab, no getty); /dev is the kernel's devtmpfs and
# modules load on demand. The journal stays in /run. The packages' postinsts made the system
# users. Take a unit out of this list if a test needs it.
MASK="getty.target getty@.service serial-getty@.service console-getty.service systemd-timesyncd.service
apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
dpkg-db-backup.timer logrotate.timer systemd-tmpfiles-clean.timer networking.service ifupdown-pre.service
systemd-networkd-wait-online.service systemd-udev-settle.service systemd-firstboot.service
systemd-random-seed.service systemd-update-utmp.service systemd-update-utmp-runlevel.service
systemd-pstore.service sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount
modprobe@drm.service modprobe@dm_mod.service modprobe@efi_pstore.service systemd-remount-fs.service
systemd-sysusers.service systemd-journal-flush.service systemd-modules-load.service
modprobe@configfs.service sys-kernel-config.mount modprobe@fuse.service sys-fs-fuse-connections.mount
modprobe@loop.service systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
systemd-udev-trigger.service"

# Generators that would find nothing to do here (each is a process start under TCG at every
# boot); the debug generator stays: it reads systemd.wants=.
MASK_GENERATORS="cryptsetup gpt-auto hibernate-resume integritysetup veritysetup sysv rc-local
system-update getty run"

# A cpio of busybox, the init and the modules needed to reach the 9p tree, built once.
prepare_initramfs() {
    local bb mods="virtio_pci 9pnet_virtio 9p overlay" key st want m f dep done_list=" "
    bb=$(command -v busybox) || die "busybox-static is required (apt-get install busybox-static)"
    key=$({ echo "$INIT$KVER$mods"; cat "$bb"; } | sha256sum | cut -c1-16)
    INITRD=$CACHE/initramfs-$key.cpio
    [ -s "$INITRD" ] && return
    note "building $INITRD"
    st=$(mktemp -d "$CACHE/initramfs.XXXXXX")
    mkdir -p "$st/bin" "$st/dev" "$st/proc" "$st/sys" "$st/vm" "$st/lib/modules/$KVER"
    cp "$bb" "$st/bin/busybox"
    for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$st/bin/$a"; done
    printf '%s\n' "$INIT" > "$st/init" && chmod 755 "$st/init"
    mknod "$st/dev/console" c 5 1
    want=$mods
    while [ -n "$want" ]; do
        set -- $want; m=$1; shift; want="$*"
        f=$(awk -F: -v m="${m//-/_}" '{n=$1; sub(/.*\//,"",n); sub(/\.ko.*/,"",n); gsub(/-/,"_",n); if (n==m) {print $1; exit}}' "$KMODS/modules.dep")
        [ -n "$f" ] || die "module $m is not in $KMODS"
        case $done_list in *" $f "*) continue ;; esac
        done_list="$done_list$f "
        mkdir -p "$st/lib/modules/$KVER/$(dirname "$f")"
        cp "$KMODS/$f" "$st/lib/modules/$KVER/$f"
        grep "^$f:" "$KMODS/modules.dep" >> "$st/lib/modules/$KVER/modules.dep"
        for dep in $(awk -F: -v f="$f" '$1==f {print $2}' "$KMODS/modules.dep"); do
            dep=${dep##*/}; want="$want ${dep%%.ko*}"
        done
    done
    (cd "$st" && find . | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 > "$INITRD.tmp" 2>/dev/null)
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$st"
    for f in "$CACHE"/initramfs-*.cpio; do [ "$f" = "$INITRD" ] || rm -f "$f"; done
}

mkdir -p "$CACHE"
prepare_kernel
exec 9> "$CACHE/lock"
flock 9
SETUP_START=$EPOCHSECONDS
prepare_tree
prepare_initramfs
flock -u 9
if [ $SETUP = 1 ]; then note "ready: kernel $KVER, tree $TREE ($((EPOCHSECONDS - SETUP_START)) s)"; exit 0; fi

# ------------------------------------------------------------------------------- run ----
RUN=$(mktemp -d /tmp/hutch-systemd-vm.XXXXXX)
QPID=
stop_qemu() {
    [ -n "$QPID" ] || return 0
    kill "$QPID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    QPID=
}
trap 'rc=$?; stop_qemu; rm -rf "$RUN"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

q() { local s=$1; printf "'%s'" "${s//\'/\'\\\'\'}"; }
mkdir -p "$RUN/cpio/vm"
if [ $# -eq 1 ]; then
    printf '%s\n' "$1" > "$RUN/cpio/vm/cmd"
else
    { printf 'exec'; for a in "$@"; do printf ' %s' "$(q "$a")"; done; echo; } > "$RUN/cpio/vm/cmd"
fi
printf '%s\n' "$RUNNER" > "$RUN/cpio/vm/run"
{
    echo "CWD=$(q "$PWD")"
    echo "MASK=$(q "${MASK//$'\n'/ }")"
    echo "MASK_GENERATORS=$(q "${MASK_GENERATORS//$'\n'/ }")"
    echo "NSHARE=${#SHARES[@]}"
    i=0; for s in "${SHARES[@]}"; do echo "SHARE_$i=$(q "$s")"; i=$((i + 1)); done
    envs=""; for e in "${ENVS[@]}"; do envs="$envs $(q "$e")"; done
    echo "ENVS=$(q "$envs")"
} > "$RUN/cpio/vm/conf"
(cd "$RUN/cpio" && find . | busybox cpio -o -H newc -R 0:0 > "$RUN/run.cpio" 2>/dev/null)
cat "$INITRD" "$RUN/run.cpio" > "$RUN/initrd"

# systemd.wants= starts the command unit whatever the default target; cgroup_no_v1=all keeps
# every controller on the v2 hierarchy (--cgroup-v1: systemd's legacy v1 layout instead).
CGROUPS="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
[ "$CGROUP_V1" = 1 ] && CGROUPS="systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"
APPEND="console=ttyS0 quiet panic=-1 8250.nr_uarts=4 mitigations=off random.trust_cpu=on
$CGROUPS systemd.wants=hutch-vm-cmd.service
systemd.show_status=error systemd.firstboot=0 rd.udev.log_level=3 udev.log_level=3"
APPEND=${APPEND//$'\n'/ }
start_qemu() {  # $1 = kvm | tcg
    local args=(-nodefaults -no-user-config -display none -no-reboot -M pc -m "$MEM" -smp "$CPUS")
    [ -f /usr/share/qemu/qboot.rom ] && args+=(-bios /usr/share/qemu/qboot.rom)
    if [ "$1" = kvm ]; then args+=(-accel kvm -cpu host); else args+=(-accel tcg -cpu max); fi
    args+=(-kernel "$KERNEL" -initrd "$RUN/initrd" -append "$APPEND")
    : > "$RUN/console"; : > "$RUN/stdout"; : > "$RUN/stderr"; : > "$RUN/status"
    local port
    for port in console stdout stderr status; do
        args+=(-chardev "file,id=$port,path=$RUN/$port" -serial "chardev:$port")
    done
    args+=(-fsdev "local,id=tree,path=${TREE//,/,,},security_model=passthrough,readonly=on,multidevs=remap"
           -device virtio-9p-pci,fsdev=tree,mount_tag=tree)
    local i=0 s
    for s in "${SHARES[@]}"; do
        args+=(-fsdev "local,id=share$i,path=${s//,/,,},security_model=passthrough,multidevs=remap"
               -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
        i=$((i + 1))
    done
    # PDEATHSIG: a killed systemd-vm.sh takes its VM with it.
    setpriv --pdeathsig KILL -- $QEMU "${args[@]}" < /dev/null > "$RUN/qemu.log" 2>&1 &
    QPID=$!
    if [ $CONSOLE = 1 ]; then tail -f --pid=$QPID "$RUN/console" >&2 & fi
}

# Waits for the VM: 0 = it exited, 1 = the overall deadline passed, 2 = not booted in time.
wait_qemu() {  # $1 = boot deadline (epoch seconds)
    while kill -0 "$QPID" 2>/dev/null; do
        if ! grep -q BOOTED "$RUN/status" && [ "$EPOCHSECONDS" -ge "$1" ]; then return 2; fi
        [ "$EPOCHSECONDS" -ge "$DEADLINE" ] && return 1
        sleep 0.2
    done
    wait "$QPID" 2>/dev/null || true
    QPID=
    return 0
}

START=$EPOCHREALTIME
DEADLINE=$((EPOCHSECONDS + TIMEOUT))
if [ "$ACCEL" = auto ]; then
    if [ -w /dev/kvm ] && [ "$(cat "$VMCACHE/kvm-works" 2>/dev/null)" = yes ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
# A boot that hangs is retried: the command has not started before BOOTED, so a retry has no
# side effects.
attempt=1
while :; do
    start_qemu "$ACCEL"
    set +e; wait_qemu $((EPOCHSECONDS + BOOT_TIMEOUT)); w=$?; set -e
    if [ $w = 1 ] || grep -q BOOTED "$RUN/status"; then break; fi
    stop_qemu
    if grep -qa FATAL "$RUN/status"; then
        note "the guest could not start: $(grep -a FATAL "$RUN/status")"; tail -n 30 "$RUN/console" >&2; exit 125
    elif [ "$ACCEL" = kvm ]; then
        note "KVM did not boot the guest; using TCG"; ACCEL=tcg
    elif [ $attempt -ge 3 ]; then
        note "the guest did not boot ($attempt attempts); console:"; tail -n 30 "$RUN/console" >&2; exit 125
    else
        note "the guest did not boot; retrying"; attempt=$((attempt + 1))
    fi
done
cat "$RUN/stdout"
cat "$RUN/stderr" >&2
if [ "$w" = 1 ]; then
    stop_qemu
    note "timeout after ${TIMEOUT}s; console:"; tail -n 20 "$RUN/console" >&2
    exit 124
fi
if [ $TIME = 1 ]; then
    booted=$(tr -d '\r' < "$RUN/status" | sed -n 's/^BOOTED \([0-9.]*\)$/\1/p' | tail -n1)
    done=$(tr -d '\r' < "$RUN/status" | sed -n 's/^DONE \([0-9.]*\)$/\1/p' | tail -n1)
    note "$(awk -v a="$START" -v b="$EPOCHREALTIME" -v s="${booted:-0}" -v d="${done:-0}" \
        'BEGIN {printf "command started %.1f s after the kernel, ran %.1f s; whole run %.1f s", s, d - s, b - a}')"
fi
rc=$(tr -d '\r' < "$RUN/status" | sed -n 's/^EXIT=\([0-9]*\)$/\1/p' | tail -n1)
if [ -z "$rc" ]; then
    note "the VM stopped without an exit status; qemu and console:"
    { cat "$RUN/qemu.log"; grep -a FATAL "$RUN/status" || true; tail -n 30 "$RUN/console"; } >&2
    exit 125
fi
exit "$rc"
