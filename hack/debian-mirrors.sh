# hack/debian-mirrors.sh: sourced by the scripts that build Debian trees with mmdebstrap
# (hack/systemd-vm.sh, hack/package-test.sh). `debian_mirrors SUITE` prints the sources apt uses
# here, as mmdebstrap takes them: SUITE and its updates from the main archive, and the security
# archive, so a tree has the host's package versions. Returns 1 when apt names no Debian mirror.
debian_mirrors() {
    local suite=$1 main sec
    main=$(grep -rhs -m1 '^URIs:.*/debian/\?$' /etc/apt/sources.list.d/ | awk '{print $2}' | head -n1)
    [ -n "$main" ] || main=$(grep -hs -m1 '^deb .*/debian/\? ' /etc/apt/sources.list | awk '{print $2}')
    [ -n "$main" ] || return 1
    sec=$(grep -rhs -m1 '^URIs:.*/debian-security/\?$' /etc/apt/sources.list.d/ | awk '{print $2}' | head -n1)
    [ -n "$sec" ] || sec=$(grep -hs -m1 '^deb .*/debian-security/\? ' /etc/apt/sources.list | awk '{print $2}')
    echo "deb $main $suite main"
    echo "deb $main $suite-updates main"
    [ -z "$sec" ] || echo "deb $sec $suite-security main"
}
