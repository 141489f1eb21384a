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
# exit status comes back, and after the task is deleted the unit is gone; then containerd's
# checkpoint and restore of a counter (with CRIU, which must work here). Prints
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
ok() { echo "ok   $1 $2${3:+ ($3)}"; }
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

# Kills the task of container $1 and removes both.
remove() {
    ctr task kill -s KILL "$1" >/dev/null 2>&1
    for _ in $(seq 50); do ctr task ls -q 2>/dev/null | grep -qx "$1" || break
        ctr task delete "$1" >/dev/null 2>&1 || sleep 0.2; done
    ctr containers rm "$1" >/dev/null 2>&1
}

# The counter's value in container $1, read from its rootfs as the shim mounted it.
count() { cat "/run/containerd/io.containerd.runtime.v2.task/default/$1/rootfs/count" 2>/dev/null; }

# containerd's checkpoint/restore of container $1 (a counter): `ctr containers checkpoint
# --task` (the shim pauses the task, runs `RUNTIME checkpoint`, then resumes it), the
# task and container removed, then `ctr containers restore --live` (the shim runs `RUNTIME
# restore --detach` with the systemd driver's cgroupsPath). The count is read once the checkpoint
# returns; the restored counter, which goes on from the checkpointed value (at most that read),
# must pass it within a few seconds, where a fresh start (from 1) would be far below it.
checkpoint_restore() {
    local c=$1 ref=localhost/hutch-e2e/checkpoint:$1 at now pid
    ARGS=(sh -c 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done')
    run "$c" -d >/dev/null 2>&1 || { fail "$name" checkpoint-restore "ctr run -d"; return; }
    sleep 6
    out=$(ctr containers checkpoint --task "$c" "$ref" 2>&1) ||
        { fail "$name" checkpoint "$out"; remove "$c"; return; }
    at=$(count "$c")
    ok "$name" checkpoint
    remove "$c"
    out=$(ctr containers restore --live "$c" "$ref" 2>&1) ||
        { fail "$name" restore "$out"; remove "$c"; ctr images rm "$ref" >/dev/null 2>&1; return; }
    for _ in $(seq 50); do
        now=$(count "$c")
        [ -n "$at" ] && [ -n "$now" ] && [ "$now" -gt "$at" ] && break
        sleep 0.2
    done
    pid=$(ctr task ls 2>/dev/null | awk -v c="$c" '$1 == c { print $2 }')
    [ -n "$at" ] && [ -n "$now" ] && [ "$now" -gt "$at" ] && [ "$at" -gt 20 ] &&
        ok "$name" restore-resumes "count $at after the checkpoint, $now after the restore" ||
        fail "$name" restore-resumes "count at checkpoint ${at:-none}, after restore ${now:-none}"
    grep -q "hutch-e2e-$c.scope" "/proc/$pid/cgroup" 2>/dev/null && ok "$name" restore-in-scope ||
        fail "$name" restore-in-scope "pid ${pid:-none}: $(cat "/proc/$pid/cgroup" 2>&1)"
    remove "$c"
    ctr images rm "$ref" >/dev/null 2>&1
}

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
    remove "$id"
    [ "$(show LoadState)" = not-found ] && [ ! -e "/sys/fs/cgroup/system.slice/$unit" ] &&
        ok "$name" unit-gone || fail "$name" unit-gone "LoadState=$(show LoadState)"
    if command -v criu >/dev/null && criu check >/dev/null 2>&1; then
        checkpoint_restore "$id-cr"
    else
        fail "$name" checkpoint-restore "criu check fails here"
    fi
done
echo "systemd-containerd: $fails failed"
[ "$fails" = 0 ]
