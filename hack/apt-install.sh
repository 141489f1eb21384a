# hack/apt-install.sh: sourced by the engine and CRI suites (hack/engines/test.sh,
# hack/cri/test.sh). `apt_install LOG PKG...` installs packages from Debian without letting their
# init scripts start system daemons (the suites run private daemons of their own); apt's output
# goes to LOG, and its tail to stderr when it fails. Returns apt's status.
apt_install() {
    local log=$1 made_policy=0 rc
    shift
    local pkgs
    mapfile -t pkgs < <(printf '%s\n' "$@" | sort -u)
    echo "== apt-get install ${pkgs[*]}"
    apt-get update -qq </dev/null || { echo "apt-get update failed" >&2; return 1; }
    # A policy-rc.d that says 101 keeps the packages' init scripts from starting daemons.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" </dev/null >"$log" 2>&1
    rc=$?
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || tail -20 "$log" >&2
    return $rc
}
