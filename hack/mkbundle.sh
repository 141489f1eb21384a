#!/usr/bin/env bash
# hack/mkbundle.sh DIR [RUNTIME]
#
# Makes an OCI bundle in DIR:
#   DIR/rootfs       a busybox root filesystem built from Debian's busybox-static (/bin/busybox):
#                    /bin/busybox plus one symlink per applet, dev proc sys tmp etc ... dirs, and an
#                    /etc/passwd and /etc/group with root (0) and user (1000).
#   DIR/config.json  the default config written by `RUNTIME spec` (default runtime: $HUTCH, else
#                    target/x86_64-unknown-linux-gnu/release/hutch, else hutch on PATH). runc's `spec` writes an equivalent one.
#
# The config is left exactly as `spec` wrote it (args ["sh"], terminal true, root.readonly true):
# callers patch the JSON for what they need.
#
# Environment: BUSYBOX=/path/to/busybox to use another static busybox; NO_CONFIG=1 to skip config.json.
set -euo pipefail

usage() { echo "usage: $0 DIR [RUNTIME]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

dir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

runtime=${2:-${HUTCH:-}}
if [ -z "$runtime" ]; then
    if [ -x "$repo/target/x86_64-unknown-linux-gnu/release/hutch" ]; then
        runtime=$repo/target/x86_64-unknown-linux-gnu/release/hutch
    else
        runtime=hutch
    fi
fi

busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
    echo "mkbundle: $busybox not found; install it with: apt-get install -y busybox-static" >&2
    exit 1
fi
if ! file_out=$(LC_ALL=C "$busybox" true 2>&1); then
    echo "mkbundle: $busybox does not run: $file_out" >&2
    exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rootfs=$dir/rootfs
if [ -e "$rootfs" ]; then
    echo "mkbundle: $rootfs already exists" >&2
    exit 1
fi

mkdir -p "$rootfs"
for d in bin sbin dev proc sys tmp etc root home/user run var/tmp mnt usr/bin usr/sbin; do
    mkdir -p "$rootfs/$d"
done
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 700 "$rootfs/root"
# An unprivileged caller (a rootless bundle) owns the whole tree; inside its user namespace
# that is root, so /home/user stays root-owned there.
[ "$(id -u)" -ne 0 ] || chown 1000:1000 "$rootfs/home/user"

cp "$busybox" "$rootfs/bin/busybox"
chmod 755 "$rootfs/bin/busybox"
# One symlink per applet, all in /bin (the default PATH of `spec` covers /bin).
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$rootfs/bin/$applet"
done

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
echo "hutch" >"$rootfs/etc/hostname"
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"

if [ "${NO_CONFIG:-}" != 1 ]; then
    rm -f "$dir/config.json"
    (cd "$dir" && "$runtime" spec)
    if [ ! -s "$dir/config.json" ]; then
        echo "mkbundle: '$runtime spec' wrote no config.json in $dir" >&2
        exit 1
    fi
fi
