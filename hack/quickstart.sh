#!/usr/bin/env bash
# hack/quickstart.sh: build hutch, make a demo bundle (busybox rootfs from Debian's
# busybox-static, config from `hutch spec`) and run a container that prints from inside.
# Run as root on Debian 12: `sudo hack/quickstart.sh`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
    echo "quickstart: run as root (containers need it): sudo $0" >&2
    exit 1
fi
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "== installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static </dev/null >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi

echo "== building hutch (release)"
cargo build --release --quiet
hutch=$repo/target/x86_64-unknown-linux-gnu/release/hutch

demo=$(mktemp -d /tmp/hutch-quickstart.XXXXXX)
trap 'rm -rf "$demo"' EXIT
bundle=$demo/bundle
echo "== making a busybox bundle in $bundle"
hack/mkbundle.sh "$bundle" "$hutch"

# Non-interactive: no terminal, a command that prints something from inside.
args='["sh", "-c", "echo hello from inside hutch; echo hostname: $(hostname); echo pid: $$; id"]'
sed -z -i -e 's/"terminal": *true/"terminal": false/' \
    -e "s/\"args\": *\[[^]]*\]/\"args\": $args/" "$bundle/config.json"

id=quickstart-$$
echo "== $hutch run --bundle $bundle $id"
"$hutch" --root "$demo/state" run --bundle "$bundle" "$id"
echo "== done"
