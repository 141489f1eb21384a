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

echo "== structure: no import cycle, no file over 600 lines, no function over 80 (hack/structure)"
hack/structure

echo "== unit tests"
cargo test --release --lib --bins -- --test-threads="$threads" "$@"

echo "== integration tests (runtime: ${HUTCH_RUNTIME:-hutch})"
cargo test --release --test integration -- --test-threads="$threads" "$@"

# The cgroup tests again on a pure cgroup v2 kernel: this host is hybrid (v1 controllers), so
# they run in a throwaway VM that sees this tree and runs the test binary built above. The
# rootless tests too (`cgroups::` also matches `rootless_cgroups::`, the delegated subtree).
if [ "${HUTCH_SKIP_VM:-}" = 1 ]; then
    echo "== cgroup v2 tests in a VM: skipped (HUTCH_SKIP_VM=1)"
    exit 0
fi
echo "== cgroup v2 and checkpoint/restore tests in a VM (pure cgroup v2 kernel, Debian 6.1)"
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
test_bin=$(cargo test --release --test integration --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == "integration":
        print(m["executable"])' | tail -1)
[ -n "$test_bin" ] || { echo "hack/test.sh: integration test binary not found" >&2; exit 1; }
# The build's target triple is named in .cargo/config.toml: the binaries and the tests' scratch
# directory (CARGO_TARGET_TMPDIR) are under it.
out=$target/x86_64-unknown-linux-gnu
mkdir -p "$out/tmp"
# The tests keep their state on a tmpfs: 9p lacks renameat2(RENAME_NOREPLACE).
# The guest has its own /tmp, /run and /var: share the work tree (and the target directory when
# it lives elsewhere) so a clone anywhere works.
shares=(--share "$PWD")
case "$target" in "$PWD"/*) ;; *) shares+=(--share "$target") ;; esac
# Checkpoint/restore runs there too: Debian's criu 3.17 cannot start on this host's newer
# kernel and does on the guest's 6.1 (it wants the loopback up). Those tests run for hutch,
# then again for runc on the same bundles, so the two are compared on every CI run.
hack/vm-run.sh --mem 2G --timeout 2400 "${shares[@]}" -- \
    "ip link set lo up && mount -t tmpfs tmpfs $out/tmp &&
     $test_bin --test-threads=2 cgroups:: rootless:: checkpoint:: &&
     if command -v criu >/dev/null && criu check >/dev/null 2>&1; then
         HUTCH_RUNTIME=/usr/sbin/runc $test_bin --test-threads=2 checkpoint::
     else echo 'criu check fails in the VM: checkpoint tests skipped'; exit 1; fi"

# The systemd cgroup driver on a host whose PID 1 is systemd (cgroup v2), a Debian host with
# AppArmor as well: the driver's own tests and the AppArmor ones, every cgroup test again with
# --systemd-cgroup (HUTCH_IT_CGROUP_DRIVER=systemd), containerd's shim with the systemd driver,
# hutch then runc (hack/engines/systemd-containerd.sh), and Docker and podman with their systemd
# cgroup managers: the engine checks that touch cgroups (their storage wants a tmpfs under the
# overlay root; podman's host-network check wants an interface besides lo).
if [ "${HUTCH_SKIP_SYSTEMD_VM:-}" = 1 ]; then
    echo "== systemd cgroup driver in a VM: skipped (HUTCH_SKIP_SYSTEMD_VM=1)"
    exit 0
fi
echo "== systemd cgroup driver in a VM (systemd as PID 1, cgroup v2)"
hack/systemd-vm.sh --mem 2G --timeout 2400 "${shares[@]}" -- sh -c \
    "systemctl is-system-running --wait >/dev/null; mount -t tmpfs tmpfs $out/tmp &&
     $test_bin --test-threads=2 systemd_driver:: apparmor:: &&
     HUTCH_IT_CGROUP_DRIVER=systemd $test_bin --test-threads=2 cgroups:: systemd_driver:: &&
     hack/engines/systemd-containerd.sh $out/release/hutch /usr/sbin/runc &&
     mount -t tmpfs tmpfs /tmp && ip link add hutch-e2e0 type dummy &&
     hack/engines/test.sh --no-install --runtime $out/release/hutch --cgroup-driver systemd \
         --engines 'docker podman' --only '^(run-output|pause-unpause|limits|update|oom-kill|systemd-scope)\$'"
