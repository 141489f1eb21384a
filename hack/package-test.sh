#!/usr/bin/env bash
# hack/package-test.sh: the Debian package's round trip, as an operator meets it.
#
# Checks first that `cargo install --path . --root DIR` (the README's other install path) installs
# a working hutch. Then builds the .deb with cargo-deb (installed from crates.io at a pinned version if missing),
# installs it with apt-get into a clean Debian 12 root (mmdebstrap minbase plus man-db and
# bash-completion, built once into a cache outside the source tree), and checks there:
#   - the installed `hutch --version` and the package's version are Cargo.toml's;
#   - `man -w` finds hutch(8) and hutch-COMMAND(8) for every command `hutch --help` lists;
#   - every command's long flags are the same set in `--help`, in its man page and in the bash
#     completion, and `hutch completion SHELL` prints exactly the packaged scripts;
#   - bash completes `hutch del<TAB>` to `delete`;
#   - the installed binary runs a busybox container (`hutch run`);
#   - `apt-get purge` leaves no file of the package behind, and the tree as it was.
# Run as root: hack/package-test.sh. Environment: HUTCH_PKG_CACHE (default
# /var/cache/hutch-package-test) holds the Debian root's tarball; remove it to take newer packages.
# HUTCH_PKG_DEB=FILE checks that package instead of building one (a released or altered .deb).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

SUITE=bookworm
TARGET=x86_64-unknown-linux-gnu
CARGO_DEB_VERSION=3.8.0
CACHE=${HUTCH_PKG_CACHE:-/var/cache/hutch-package-test}
# What the clean root has besides minbase: what `man -w` and bash completion need.
PACKAGES=(man-db bash-completion)

die() { echo "package-test: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# ------------------------------------------------------------------- inside the namespace ----
# Runs in a private mount namespace (see the end of this file), so no mount outlives it.
# $1: the root, prepared and with the .deb at /tmp/hutch.deb. $2: the version Cargo.toml names.
inside() {
    local root=$1 version=$2
    # The root a mount of its own: pivot_root, which `hutch run` does, needs its caller's root to
    # be a mount point. /proc, /sys (with the cgroup mounts) and /dev are the host's.
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/run"
    in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

    local before after
    before=$(snapshot "$root")
    in_root apt-get install -y -q /tmp/hutch.deb >/tmp/hutch-pkg-apt.log 2>&1 ||
        { cat /tmp/hutch-pkg-apt.log >&2; die "apt-get install ./hutch.deb failed"; }
    ok "apt-get install of the .deb into a clean $SUITE root"

    check_versions "$version"
    check_docs
    check_run "$root"

    in_root apt-get purge -y -q hutch >/tmp/hutch-pkg-apt.log 2>&1 ||
        { cat /tmp/hutch-pkg-apt.log >&2; die "apt-get purge hutch failed"; }
    after=$(snapshot "$root")
    if [ "$before" != "$after" ]; then
        diff <(echo "$before") <(echo "$after") >&2 || true
        die "the tree after purge differs from the tree before install"
    fi
    local left
    left=$(find "$root" "$root/run" -xdev -name '*hutch*' 2>/dev/null | grep -v '^'"$root"'/tmp/' || true)
    [ -z "$left" ] || die "left after purge: $left"
    ok "apt-get purge leaves no file behind (the tree is as it was, /run/hutch gone)"
}

# Every path in the root with its type, mode and owner, except the package manager's own books
# (dpkg's database and logs, apt's and man-db's caches), which record the install by design.
snapshot() {
    (cd "$1" && find . -xdev \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache \
        -o -path ./var/lib/apt -o -path ./tmp \) -prune -o -printf '%p %y %m %u:%g\n' | LC_ALL=C sort)
}

check_versions() {
    local version=$1 got pkg
    got=$(in_root hutch --version | head -n1)
    [ "$got" = "hutch version $version" ] || die "installed hutch --version: '$got', want $version"
    [ "$(in_root hutch --version | wc -l)" = 3 ] || die "hutch --version is not three lines"
    pkg=$(in_root dpkg-query -W -f='${Version}' hutch)
    [ "$pkg" = "$version-1" ] || die "package version $pkg, want $version-1"
    ok "hutch --version and the package both say $version"
}

# The commands `hutch --help` lists (clap's "Commands:" block), without clap's own `help`.
commands() {
    in_root hutch --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | grep -vx help
}

# Long flags at the head of an option line: `  -b, --bundle <BUNDLE>`, `      --root <ROOT>`.
flag_heads() { grep -oE '^ +(-[A-Za-z0-9], )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+' | LC_ALL=C sort -u; }

# What bash completes for the words given (the last one is completed), one per line.
bash_complete() {
    in_root bash -c '
        . /usr/share/bash-completion/bash_completion
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _completion_loader hutch
        spec=$(complete -p hutch) || exit 1
        fn=${spec#*-F }; fn=${fn%% *}
        "$fn" hutch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' bash "$@"
}

check_docs() {
    local cmds cmd page help man comp n=0
    mapfile -t cmds < <(commands)
    [ ${#cmds[@]} -ge 17 ] || die "hutch --help lists ${#cmds[@]} commands: ${cmds[*]}"
    page=$(in_root man -w hutch) || die "man -w hutch found no page"
    [ "$page" = /usr/share/man/man8/hutch.8.gz ] || die "man -w hutch: $page"
    # "" is hutch itself: its page is hutch(8), its flags the global ones.
    for cmd in "" "${cmds[@]}"; do
        local name=hutch${cmd:+-$cmd}
        page=$(in_root man -w "$name") || die "man -w $name found no page"
        [ "$page" = "/usr/share/man/man8/$name.8.gz" ] || die "man -w $name: $page"
        help=$(in_root hutch $cmd --help | flag_heads)
        man=$(in_root env MANWIDTH=200 man -P cat "$name" 2>/dev/null | flag_heads)
        comp=$(bash_complete hutch $cmd -- | grep -- '^--' | LC_ALL=C sort -u)
        [ -n "$help" ] || die "no flags read from hutch $cmd --help"
        [ "$help" = "$man" ] || { diff <(echo "$help") <(echo "$man") >&2 || true; die "$name(8) and --help name different flags"; }
        [ "$help" = "$comp" ] || { diff <(echo "$help") <(echo "$comp") >&2 || true; die "bash completion of 'hutch $cmd --' and --help differ"; }
        n=$((n + 1))
    done
    ok "man -w finds hutch(8) and hutch-COMMAND(8) for all $((n - 1)) commands; each page and the bash completion name exactly --help's flags"
    comp=$(bash_complete hutch del)
    [ "$comp" = delete ] || die "bash completion of 'hutch del': '$comp', want delete"
    ok "bash completes 'hutch del<TAB>' to 'delete'"
    cmp <(in_root hutch completion bash) "$root/usr/share/bash-completion/completions/hutch" &&
        cmp <(in_root hutch completion zsh) "$root/usr/share/zsh/vendor-completions/_hutch" &&
        cmp <(in_root hutch completion fish) "$root/usr/share/fish/vendor_completions.d/hutch.fish" ||
        die "hutch completion SHELL differs from the packaged script"
    ok "hutch completion bash|zsh|fish prints the packaged scripts"
}

check_run() {
    local root=$1 out
    mkdir -p "$root/tmp/bundle"
    "$repo/hack/mkbundle.sh" "$root/tmp/bundle" "$root/usr/bin/hutch" >/dev/null
    (cd "$root/tmp/bundle" && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo from-the-package $(cat /proc/self/cgroup | wc -l)"]
json.dump(c, open("config.json", "w"))
PY
    )
    out=$(in_root hutch run --bundle /tmp/bundle package-test 2>&1) || die "hutch run failed: $out"
    [[ $out == from-the-package* ]] || die "hutch run printed: $out"
    [ -z "$(in_root hutch list -q)" ] || die "hutch list shows a container after run"
    ok "the installed hutch runs a busybox container"
}

if [ "${1:-}" = --inside ]; then
    inside "$2" "$3"
    exit 0
fi

# ------------------------------------------------------------------------------- setup ----
[ "$(id -u)" = 0 ] || die "run as root"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in Cargo.toml"

if [ -n "${HUTCH_PKG_DEB:-}" ]; then
    deb=$(realpath "$HUTCH_PKG_DEB")
else
    if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
        echo "== cargo install cargo-deb $CARGO_DEB_VERSION"
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --no-default-features --quiet
    fi
    echo "== cargo deb"
    rm -rf target/debian
    cargo deb --target "$TARGET" --output target/debian/ >/dev/null
    debs=(target/debian/hutch_"$version"-1_*.deb)
    [ -f "${debs[0]}" ] || die "cargo deb made no target/debian/hutch_$version-1_*.deb"
    deb=$repo/${debs[0]}
fi

# The clean root: a tarball in CACHE named by what went into it, built beside and renamed into
# place so a half-built one is never used.
# shellcheck source=hack/debian-mirrors.sh
. hack/debian-mirrors.sh
mapfile -t mirrors < <(debian_mirrors "$SUITE") || true
[ ${#mirrors[@]} -gt 0 ] || die "no Debian mirror configured in /etc/apt"
key=$(printf '%s\n' "root v1" "$SUITE" "${PACKAGES[@]}" "${mirrors[@]}" | sha256sum | cut -c1-16)
tarball=$CACHE/root-$key.tar
if [ ! -s "$tarball" ]; then
    command -v mmdebstrap >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap </dev/null >/dev/null
    echo "== building a clean $SUITE root into $tarball (once)"
    mkdir -p "$CACHE"
    mmdebstrap --quiet --format=tar --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --aptopt='APT::Install-Recommends "false"' "$SUITE" "$tarball.new" "${mirrors[@]}" ||
        { rm -f "$tarball.new"; die "mmdebstrap failed"; }
    mv "$tarball.new" "$tarball"
    for t in "$CACHE"/root-*.tar; do [ "$t" = "$tarball" ] || rm -f "$t"; done
fi

work=$(mktemp -d /var/tmp/hutch-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# It shares target/ with the build above, so it copies rather than compiles.
cargo install --quiet --locked --path . --root "$work/cargo-root" 2>/dev/null ||
    die "cargo install --path . --root DIR failed"
got=$("$work/cargo-root/bin/hutch" --version | head -n1)
[ "$got" = "hutch version $version" ] || die "cargo-installed hutch --version: '$got'"
ok "cargo install --path . --root DIR installs bin/hutch ($got)"
mkdir "$work/root"
tar -xf "$tarball" -C "$work/root"
cp "$deb" "$work/root/tmp/hutch.deb"
echo "== installing $(basename "$deb") into the clean root"
unshare --mount --propagation private "$0" --inside "$work/root" "$version"
