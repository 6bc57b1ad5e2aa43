# shellcheck shell=bash
# Sourced (not run): apt_install PACKAGE..., Debian's packages for the
# scripts that install what they need. One `apt-get update` per process,
# before its first install; as root, or through sudo when not root.
apt_updated=0
apt_install() {
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || {
            echo "need root (or sudo) to run: apt-get install $*" >&2
            return 1
        }
        sudo=(sudo)
    fi
    if ((!apt_updated)); then
        "${sudo[@]}" apt-get update -qq
        apt_updated=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
