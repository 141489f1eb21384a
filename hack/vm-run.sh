#!/usr/bin/env bash
# hack/vm-run.sh [options] [--] COMMAND [ARG...]
#
# Runs COMMAND as root inside a throwaway QEMU VM whose kernel has a PURE cgroup v2 hierarchy
# (cgroup_no_v1=all; cgroup2 on /sys/fs/cgroup with every controller enabled in the root's
# cgroup.subtree_control), and passes its stdout, stderr and exit status back. hutch's cgroup
# tests use it to run on a v2 kernel from a cgroup v1/hybrid host.
#
# The guest sees the host's / read-only (virtio-9p) with tmpfs overlays on /usr and /etc and
# tmpfs /tmp, /run and /var, so host binaries (hutch, the test binaries, busybox, runc) run with the
# host's own libraries. Directories given with --share are mounted read-write at the same path.
# One argument is run as a shell script (`vm-run.sh 'cat /a; echo $?'`); several are an argv.
#
# Options:
#   --share DIR      mount host DIR read-write at the same path in the guest (repeatable)
#   --env K=V        set an environment variable for COMMAND (repeatable)
#   --timeout SECS   kill the VM after SECS (default 600); exit status 124
#   --mem SIZE       guest memory (default 1G)       --cpus N   guest CPUs (default 2)
#   --accel MODE     auto (default: KVM if it boots a guest here, else TCG), kvm or tcg
#   --console        copy the guest console (kernel and init messages) to stderr
#   --setup          only install qemu and prepare the kernel and initramfs
#
# Exit status: COMMAND's; 124 on timeout; 125 when the VM could not run the command.
# Environment: HUTCH_VM_CACHE (default /var/cache/hutch-vm: the Debian kernel, initramfs and
# KVM probe result; kept outside the source tree).
#
# Needs: root (apt-get for the first setup), busybox-static, and network access to the Debian
# mirror the first time (qemu-system-x86 from bookworm-backports, linux-image-amd64).
set -euo pipefail

CACHE=${HUTCH_VM_CACHE:-/var/cache/hutch-vm}
QEMU=qemu-system-x86_64
TIMEOUT=600 MEM=1G CPUS=2 ACCEL=auto CONSOLE=0 SETUP=0
SHARES=() ENVS=()

die() { echo "vm-run: $*" >&2; exit 125; }
note() { echo "vm-run: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --share) SHARES+=("$(readlink -f "$2")"); shift 2 ;;
        --env) ENVS+=("$2"); shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --accel) ACCEL=$2; shift 2 ;;
        --console) CONSOLE=1; shift ;;
        --setup) SETUP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || [ $SETUP = 1 ] || die "no command given (see --help)"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout takes seconds"
case $ACCEL in auto|kvm|tcg) ;; *) die "--accel: auto, kvm or tcg" ;; esac
for s in "${SHARES[@]}"; do [ -d "$s" ] || die "--share $s: not a directory"; done
for e in "${ENVS[@]}"; do [[ $e == *=* ]] || die "--env $e: expected KEY=VALUE"; done

# ----------------------------------------------------------------------------- setup ----
install_qemu() {
    command -v $QEMU >/dev/null && return
    note "installing qemu-system-x86"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2; then return; fi
    # Debian 12 hosts that carry qemu-utils from backports need qemu-system-x86 from there too.
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # Backports from the same mirror the machine's bookworm entry already uses.
        local mirror
        mirror=$(grep -rhs -m1 '^URIs:.*/debian$' /etc/apt/sources.list.d/ | awk '{print $2}')
        [ -n "$mirror" ] || mirror=$(grep -hs -m1 '^deb .*/debian ' /etc/apt/sources.list | awk '{print $2}')
        [ -n "$mirror" ] || die "no Debian mirror configured in /etc/apt to add bookworm-backports from"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$mirror" > /etc/apt/sources.list.d/bookworm-backports.sources
    fi
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >&2 ||
        die "could not install qemu-system-x86"
}

# The Debian kernel package, unpacked (not installed) into the cache.
prepare_kernel() {
    local kdir=$CACHE/kernel
    if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
        local pkg tmp
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
        [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
        note "downloading $pkg"
        tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
        (cd "$tmp" && apt-get download -qq "$pkg" >&2) || die "apt-get download $pkg failed"
        rm -rf "$kdir.new" && dpkg-deb -x "$tmp"/*.deb "$kdir.new" && rm -rf "$tmp"
        busybox depmod -b "$kdir.new" "$(ls "$kdir.new/lib/modules")"
        rm -rf "$kdir" && mv "$kdir.new" "$kdir"
    fi
    KVER=$(ls "$kdir/lib/modules")
    KMODS=$kdir/lib/modules/$KVER
    KERNEL=$kdir/boot/vmlinuz-$KVER
    # The bzImage's xz payload as a plain ELF vmlinux: QEMU starts it at its PVH entry point,
    # skipping the real-mode setup and the in-guest decompression (seconds under TCG).
    local elf=$CACHE/vmlinux-$KVER off
    if [ ! -s "$elf" ]; then
        off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KERNEL" | head -n1 | cut -d: -f1 || true)
        if [ -n "$off" ] && tail -c +$((off + 1)) "$KERNEL" | xz -dc --single-stream > "$elf.tmp" 2>/dev/null &&
           [ "$(head -c4 "$elf.tmp" | tail -c3)" = ELF ]; then
            mv "$elf.tmp" "$elf"
        else
            rm -f "$elf.tmp"
        fi
    fi
    [ -s "$elf" ] && KERNEL=$elf
    return 0
}

# The guest's PID 1. Stage 1 runs from the initramfs: reach the host's / over 9p, move to a
# tmpfs root (pivot_root, which containers need, does not work on the initramfs itself). Stage
# 2 builds the file system, mounts cgroup2, runs the command and powers off.
# Serial ports: ttyS0 console, ttyS1 stdout, ttyS2 stderr, ttyS3 status (BOOTED, EXIT=n).
read -r -d '' INIT <<'EOF' || true
#!/.vm/bin/sh
export PATH=/.vm/bin
say() { echo "vm-init: $*" > /dev/console; }
fatal() { say "FATAL: $*"; echo "FATAL $*" > /dev/ttyS3; poweroff -f; }
. /.vm/conf
if [ "$1" != stage2 ]; then
    mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
    for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe $m || fatal "modprobe $m"; done
    mkdir /root2 && mount -t tmpfs -o mode=0755 root /root2 || fatal "tmpfs root"
    mkdir -p /root2/.vm/host /root2/proc /root2/sys /root2/dev
    mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 host /root2/.vm/host ||
        fatal "9p host root"
    cp -a /.vm/bin /.vm/conf /.vm/cmd /.vm/init /root2/.vm/
    for d in proc sys dev; do mount --move /$d /root2/$d; done
    exec switch_root /root2 /.vm/init stage2
fi
H=/.vm/host
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L $H/$d ]; then ln -s "$(readlink $H/$d)" /$d
    elif [ -d $H/$d ]; then mkdir /$d && mount --bind $H/$d /$d; fi
done
for d in usr etc; do
    mkdir -p /$d /.vm/rw/$d /.vm/rw/$d.work
    mount -t overlay overlay -o lowerdir=$H/$d,upperdir=/.vm/rw/$d,workdir=/.vm/rw/$d.work /$d ||
        mount --bind $H/$d /$d
done
# Every other host top-level directory (/work, /root, /opt...) read-only, at the same path.
for p in $H/*; do
    d=${p#$H/}
    case $d in bin|sbin|lib|lib32|lib64|libx32|usr|etc|proc|sys|dev|tmp|run|var|boot|lost+found) continue ;; esac
    [ -d "$p" ] && [ ! -L "$p" ] && mkdir -p "/$d" && mount --bind "$p" "/$d"
done
mkdir -p /tmp /run /root /var/tmp /var/lib /var/log /var/cache /home /mnt /opt /srv
ln -s /run /var/run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
chmod 1777 /var/tmp
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
ln -sf /proc/self/fd /dev/fd
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || fatal "mount cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || say "cannot enable $c"
done
# Kernel modules on demand (overlay, veth...) from the unpacked Debian package.
mkdir -p /lib/modules/$KVER 2>/dev/null && mount --bind $H$KMODS /lib/modules/$KVER 2>/dev/null &&
    echo /.vm/bin/modprobe > /proc/sys/kernel/modprobe
i=0
while [ $i -lt $NSHARE ]; do
    eval "d=\$SHARE_$i"
    mkdir -p "$d" && mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=512000 share$i "$d" ||
        fatal "9p share $d"
    i=$((i + 1))
done
hostname hutch-vm
for t in ttyS1 ttyS2 ttyS3; do stty -F /dev/$t raw -echo 2>/dev/null; done
cd "$CWD" 2>/dev/null || cd /
echo BOOTED > /dev/ttyS3
eval "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
    LANG=C.UTF-8 $ENVS /bin/sh /.vm/cmd" < /dev/null > /dev/ttyS1 2> /dev/ttyS2
echo "EXIT=$?" > /dev/ttyS3
sync
poweroff -f
EOF

# A cpio of busybox, the init and the modules needed to reach the 9p root, built once.
prepare_initramfs() {
    local bb mods="virtio_pci 9pnet_virtio 9p overlay" key st want m f dep done_list=" "
    bb=$(command -v busybox) || die "busybox-static is required (apt-get install busybox-static)"
    key=$({ echo "$INIT$KVER$mods"; cat "$bb"; } | sha256sum | cut -c1-16)
    INITRD=$CACHE/initramfs-$key.cpio
    [ -s "$INITRD" ] && return
    note "building $INITRD"
    st=$(mktemp -d "$CACHE/initramfs.XXXXXX")
    mkdir -p "$st/.vm/bin" "$st/dev" "$st/proc" "$st/sys" "$st/lib/modules/$KVER"
    cp "$bb" "$st/.vm/bin/busybox"
    for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$st/.vm/bin/$a"; done
    printf '%s\n' "$INIT" > "$st/.vm/init" && chmod 755 "$st/.vm/init"
    ln -s .vm/init "$st/init"
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
}

mkdir -p "$CACHE"
install_qemu
exec 9> "$CACHE/lock"
flock 9
prepare_kernel
prepare_initramfs
flock -u 9
if [ $SETUP = 1 ]; then note "ready: kernel $KVER"; exit 0; fi

# ------------------------------------------------------------------------------- run ----
RUN=$(mktemp -d /tmp/hutch-vm.XXXXXX)
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
mkdir -p "$RUN/cpio/.vm"
if [ $# -eq 1 ]; then
    printf '%s\n' "$1" > "$RUN/cpio/.vm/cmd"
else
    { printf 'exec'; for a in "$@"; do printf ' %s' "$(q "$a")"; done; echo; } > "$RUN/cpio/.vm/cmd"
fi
{
    echo "KVER=$(q "$KVER")"
    echo "KMODS=$(q "$KMODS")"
    echo "CWD=$(q "$PWD")"
    echo "NSHARE=${#SHARES[@]}"
    i=0; for s in "${SHARES[@]}"; do echo "SHARE_$i=$(q "$s")"; i=$((i + 1)); done
    envs=""; for e in "${ENVS[@]}"; do envs="$envs $(q "$e")"; done
    echo "ENVS=$(q "$envs")"
} > "$RUN/cpio/.vm/conf"
(cd "$RUN/cpio" && find . | busybox cpio -o -H newc -R 0:0 > "$RUN/run.cpio" 2>/dev/null)
cat "$INITRD" "$RUN/run.cpio" > "$RUN/initrd"

APPEND="console=ttyS0 quiet panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 8250.nr_uarts=4 mitigations=off random.trust_cpu=on"
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
    args+=(-fsdev "local,id=host,path=/,security_model=passthrough,readonly=on,multidevs=remap"
           -device virtio-9p-pci,fsdev=host,mount_tag=host)
    local i=0 s
    for s in "${SHARES[@]}"; do
        args+=(-fsdev "local,id=share$i,path=${s//,/,,},security_model=passthrough,multidevs=remap"
               -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
        i=$((i + 1))
    done
    # PDEATHSIG: a killed vm-run.sh takes its VM with it.
    setpriv --pdeathsig KILL -- $QEMU "${args[@]}" < /dev/null > "$RUN/qemu.log" 2>&1 &
    QPID=$!
    if [ $CONSOLE = 1 ]; then tail -f --pid=$QPID "$RUN/console" >&2 & fi
}

# Waits for the VM: 0 = it exited, 1 = the overall deadline passed, 2 = not booted in time.
wait_qemu() {  # $1 = boot deadline (epoch seconds)
    while kill -0 "$QPID" 2>/dev/null; do
        if ! grep -q BOOTED "$RUN/status" && [ "$EPOCHSECONDS" -ge "$1" ]; then return 2; fi
        [ "$EPOCHSECONDS" -ge "$DEADLINE" ] && return 1
        sleep 0.1
    done
    wait "$QPID" 2>/dev/null || true
    QPID=
    return 0
}

DEADLINE=$((EPOCHSECONDS + TIMEOUT))
KVM_STATE=$CACHE/kvm-works
if [ $ACCEL = auto ]; then
    if [ -w /dev/kvm ] && [ "$(cat "$KVM_STATE" 2>/dev/null)" != no ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
# A boot that hangs (KVM that cannot run this guest, a rare early TCG stall) is retried: the
# command has not started before BOOTED, so a retry has no side effects.
attempt=1
while :; do
    start_qemu $ACCEL
    set +e; wait_qemu $((EPOCHSECONDS + 60)); w=$?; set -e
    # Booted (or out of time): done. Not booted: hung (2) or qemu gave up (0, e.g. KVM abort).
    if [ $w = 1 ] || grep -q BOOTED "$RUN/status"; then break; fi
    stop_qemu
    if [ $ACCEL = kvm ]; then
        note "KVM did not boot the guest; using TCG from now on"
        echo no > "$KVM_STATE"; ACCEL=tcg
    elif [ $attempt -ge 3 ]; then
        note "the guest did not boot ($attempt attempts); console:"; tail -n 30 "$RUN/console" >&2; exit 125
    else
        note "the guest did not boot; retrying"; attempt=$((attempt + 1))
    fi
done
[ $ACCEL = kvm ] && echo yes > "$KVM_STATE"
cat "$RUN/stdout"
cat "$RUN/stderr" >&2
if [ $w = 1 ]; then
    stop_qemu
    note "timeout after ${TIMEOUT}s; console:"; tail -n 20 "$RUN/console" >&2
    exit 124
fi
rc=$(tr -d '\r' < "$RUN/status" | sed -n 's/^EXIT=\([0-9]*\)$/\1/p' | tail -n1)
if [ -z "$rc" ]; then
    note "the VM stopped without an exit status; qemu and console:"
    { cat "$RUN/qemu.log"; grep -a FATAL "$RUN/status" || true; tail -n 30 "$RUN/console"; } >&2
    exit 125
fi
exit "$rc"
