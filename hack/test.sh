#!/usr/bin/env bash
# hack/test.sh: the whole test suite (what CI runs). Needs root, busybox-static, and runc only
# if you compare against it (HUTCH_RUNTIME=/usr/sbin/runc hack/test.sh proves the integration
# tests against runc; hutch-only tests then print SKIP).
#
# Extra arguments go to the test binaries, e.g. `hack/test.sh namespaces::` to filter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" != 0 ]; then
    echo "hack/test.sh: the integration tests create containers and must run as root" >&2
    exit 1
fi
if [ ! -x /bin/busybox ]; then
    echo "hack/test.sh: /bin/busybox is missing: apt-get install -y busybox-static" >&2
    exit 1
fi

threads=${HUTCH_TEST_THREADS:-4}

echo "== unit tests"
cargo test --release --bins -- --test-threads="$threads" "$@"

echo "== integration tests (runtime: ${HUTCH_RUNTIME:-hutch})"
cargo test --release --test integration -- --test-threads="$threads" "$@"
