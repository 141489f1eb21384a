#!/usr/bin/env bash
# `check && ok || fail` below: ok only echoes, so fail runs exactly when the check failed.
# shellcheck disable=SC2015
# hack/engines/systemd-containerd.sh RUNTIME...: containerd's runc v2 shim with the systemd
# cgroup driver (what `SystemdCgroup = true` does: the shim passes --systemd-cgroup and a
# `slice:prefix:name` cgroupsPath), run through `ctr` with each RUNTIME in turn (hutch and runc,
# for comparison). For a host whose PID 1 is systemd: hack/test.sh runs it in hack/systemd-vm.sh.
#
# Checks per runtime: the container is in the transient scope the cgroupsPath names, systemd
# reports it active and delegated with the memory limit, the cgroup file has the limit, the
# exit status comes back, and after the task is deleted the unit is gone. Prints
# "ok|FAIL <runtime> <check>" and exits 1 if anything failed.
#
# The image is the busybox rootfs of hack/mkbundle.sh as a one-layer OCI archive, imported
# locally (never pulled); the native snapshotter, because the VM's root is itself an overlay.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RUNTIME..." >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -d /run/systemd/system ] || { echo "systemd-containerd: systemd is not PID 1 here" >&2; exit 2; }

T=$(mktemp -d /tmp/systemd-containerd.XXXXXX)
trap 'rm -rf "$T"' EXIT
IMG=localhost/hutch-e2e/busybox:latest
fails=0
ok() { echo "ok   $1 $2"; }
fail() { echo "FAIL $1 $2: $3"; fails=$((fails + 1)); }

image() {
    local b=$T/image oci=$T/image/oci ld ls cd cs md ms
    NO_CONFIG=1 "$repo/hack/mkbundle.sh" "$b" >/dev/null || return 1
    tar --numeric-owner -C "$b/rootfs" -cf "$b/layer.tar" . || return 1
    mkdir -p "$oci/blobs/sha256"
    blob() { local s; s=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$oci/blobs/sha256/$s"; echo "$s $(stat -c %s "$1")"; }
    read -r ld ls < <(blob "$b/layer.tar")
    printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin:/sbin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$(dpkg --print-architecture)" "$ld" >"$b/config.json"
    read -r cd cs < <(blob "$b/config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cd" "$cs" "$ld" "$ls" >"$b/manifest.json"
    read -r md ms < <(blob "$b/manifest.json")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
        "$md" "$ms" "$IMG" >"$oci/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
    tar -C "$oci" -cf "$T/oci.tar" oci-layout index.json blobs
}

systemctl start containerd || { echo "FAIL containerd: does not start"; exit 1; }
image || { echo "FAIL image: could not build it"; exit 1; }
ctr images import --snapshotter native "$T/oci.tar" >/dev/null || { echo "FAIL image: import"; exit 1; }

for rt in "$@"; do
    # The shim runs it from its own directory.
    rt=$(readlink -f "$rt")
    name=$(basename "$rt")
    id=sd-$name-$$
    unit=hutch-e2e-$id.scope
    # `ctr run` of container $1 in the scope hutch-e2e-$1.scope
    run() {
        local c=$1; shift
        ctr run --snapshotter native --runc-binary "$rt" --runc-systemd-cgroup \
            --cgroup "system.slice:hutch-e2e:$c" --memory-limit 67108864 "$@" "$IMG" "$c" "${ARGS[@]}"
    }
    ARGS=(sh -c 'cat /proc/self/cgroup; exit 7')
    out=$(run "$id-fg" --rm 2>&1)
    status=$?
    [ "$status" = 7 ] && ok "$name" exit-status || fail "$name" exit-status "status $status: $out"
    [[ $out == *"0::/system.slice/hutch-e2e-$id-fg.scope"* ]] && ok "$name" in-scope ||
        fail "$name" in-scope "$out"

    ARGS=(sleep 1000)
    run "$id" -d >/dev/null 2>&1 || { fail "$name" detached "ctr run -d"; continue; }
    show() { systemctl show "$unit" -p "$1" --value; }
    [ "$(show ActiveState)" = active ] && [ "$(show Delegate)" = yes ] && ok "$name" unit-active ||
        fail "$name" unit-active "ActiveState=$(show ActiveState) Delegate=$(show Delegate)"
    [ "$(show MemoryMax)" = 67108864 ] && ok "$name" unit-memory-max ||
        fail "$name" unit-memory-max "MemoryMax=$(show MemoryMax)"
    limit=$(cat "/sys/fs/cgroup/system.slice/$unit/memory.max" 2>&1)
    [ "$limit" = 67108864 ] && ok "$name" file-memory-max || fail "$name" file-memory-max "$limit"
    ctr task kill -s KILL "$id" >/dev/null 2>&1
    for _ in $(seq 50); do ctr task ls -q 2>/dev/null | grep -qx "$id" || break
        ctr task delete "$id" >/dev/null 2>&1 || sleep 0.2; done
    ctr containers rm "$id" >/dev/null 2>&1
    [ "$(show LoadState)" = not-found ] && [ ! -e "/sys/fs/cgroup/system.slice/$unit" ] &&
        ok "$name" unit-gone || fail "$name" unit-gone "LoadState=$(show LoadState)"
done
echo "systemd-containerd: $fails failed"
[ "$fails" = 0 ]
