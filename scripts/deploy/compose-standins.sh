#!/usr/bin/env bash
# scripts/deploy/compose-standins.sh: builds local stand-ins for the upstream images
# that compose.yaml and the Dockerfiles start from, from Debian's packages
# only, for a machine that reaches Debian's archive but no image registry.
# Prints, on standard output, the variables that select them
# (RUST_IMAGE=..., one a line); its progress goes to standard error.
#
#   debian     debootstrap --variant=minbase bookworm, imported with
#              `docker import` (it stands in for debian:bookworm-slim, the
#              runtime image of the services, and is the base of the others)
#   rust       + gcc and libc6-dev, + this machine's Rust toolchain
#   node       + Debian's nodejs and npm (the gateway's docs stage)
#   nginx      + Debian's nginx, with the official image's entrypoint and
#              template rendering (deploy/standins/nginx/)
#   postgres   + Debian's PostgreSQL 15, with the official image's
#              environment variables and init-script folder
#   prometheus, nginx-prometheus-exporter: Debian's packages
#
# Each image is tagged rest-microservices-standin/NAME and labelled with a
# hash of its inputs (its Dockerfile and files, its base image, the
# toolchain's version): an image whose label matches is not built again, so
# a second run costs a few `docker inspect`s. Grafana has no Debian package
# and no stand-in.
set -euo pipefail
export DOCKER_BUILDKIT=1
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/setup/apt.sh
source "$root/scripts/setup/apt.sh"
standins="$root/deploy/standins"
repo="rest-microservices-standin"
suite="${STANDIN_DEBIAN_SUITE:-bookworm}"
mirror="${STANDIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '[%s] standins: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

label_of() { docker image inspect --format '{{index .Config.Labels "standin.inputs"}}' "$1" 2>/dev/null || true; }

# ------------------------------------------------------------- debian ----
base="$repo/debian:$suite"
# The base's recipe is the code of this section: change base_recipe with it.
base_recipe=1
base_key="$(printf '%s\n' "$suite" "$mirror" "$base_recipe" | sha256sum | cut -c1-16)"
if [[ "$(label_of "$base")" != "$base_key" ]]; then
    command -v debootstrap >/dev/null || {
        log "installing debootstrap (apt-get)"
        apt_install debootstrap
    }
    rootfs="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap --variant=minbase $suite ($mirror)"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
        tail -n 30 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    # As the official Debian images: the package archive (and its security
    # updates), no service started by a package's install script, no
    # downloaded package files kept, no package lists in the image.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod +x "$rootfs/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90standin"
    printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    log "docker import -> $base"
    tar -C "$rootfs" -c . | docker import \
        --change "LABEL standin.inputs=$base_key" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi
base_id="$(docker image inspect --format '{{.Id}}' "$base")"

# -------------------------------------------------------- the others ----
# build NAME TAG [EXTRA_KEY]: deploy/standins/NAME.Dockerfile on the base,
# with deploy/standins as its context (the rust image: a context of its own).
build() {
    local name="$1" tag="$2" extra="${3:-}" image key context
    image="$repo/$name:$tag"
    key="$(
        {
            echo "$base_id" "$extra"
            cat "$standins/$name.Dockerfile"
            if [[ -d "$standins/$name" ]]; then
                find "$standins/$name" -type f -print0 | sort -z | xargs -0 sha256sum
            fi
        } | sha256sum | cut -c1-16
    )"
    if [[ "$(label_of "$image")" == "$key" ]]; then
        echo "$image"
        return 0
    fi
    context="$standins"
    if [[ "$name" == rust ]]; then
        context="$(rust_context)"
    fi
    log "docker build $image"
    # (Called as `build ... || ...`, where set -e does not apply: a failed
    # build returns by itself.)
    local built=0
    docker build --progress=plain --build-arg "BASE_IMAGE=$base" --label "standin.inputs=$key" \
        -f "$standins/$name.Dockerfile" -t "$image" "$context" >&2 || built=$?
    [[ "$context" == "$standins" ]] || rm -rf "$context"
    ((built == 0)) || return 1
    echo "$image"
}

# rust_context: a folder with this machine's active Rust toolchain (its
# sysroot without documentation and sources), hard links where possible.
rust_context() {
    local sysroot dir
    sysroot="$(rustc --print sysroot)"
    dir="$(mktemp -d /tmp/standin-rust.XXXXXX)"
    mkdir -p "$dir/toolchain/bin"
    cp -al "$sysroot/lib" "$dir/toolchain/lib" 2>/dev/null || cp -a "$sysroot/lib" "$dir/toolchain/lib"
    rm -rf "$dir/toolchain/lib/rustlib/src" "$dir/toolchain/lib/rustlib/rustc-src"
    if [[ -d "$sysroot/libexec" ]]; then
        cp -al "$sysroot/libexec" "$dir/toolchain/libexec" 2>/dev/null || cp -a "$sysroot/libexec" "$dir/toolchain/libexec"
    fi
    cp -a "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$sysroot/bin/rustdoc" "$dir/toolchain/bin/"
    echo "$dir"
}

# The six builds at once: they mostly wait for Debian's archive.
rust_version="$(rustc --version | cut -d' ' -f2)"
out="$(mktemp -d /tmp/standin-out.XXXXXX)"
pids=()
for spec in "RUST_IMAGE rust ${rust_version%.*}-$suite" "NODE_IMAGE node $suite" "NGINX_IMAGE nginx $suite" \
    "POSTGRES_IMAGE postgres 15-$suite" "PROMETHEUS_IMAGE prometheus $suite" "NGINX_EXPORTER_IMAGE nginx-exporter $suite"; do
    read -r var name tag <<<"$spec"
    extra=""
    [[ "$name" != rust ]] || extra="$(rustc --version) $(cargo --version)"
    (build "$name" "$tag" "$extra" >"$out/$var" 2>"$out/$var.log" || {
        echo "standins: building $name failed:" >&2
        tail -n 40 "$out/$var.log" >&2
        exit 1
    }) &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for f in "$out"/*.log; do grep -h 'standins:' "$f" >&2 || true; done
if ((failed)); then
    rm -rf "$out"
    exit 1
fi
echo "RUNTIME_IMAGE=$base"
for var in RUST_IMAGE NODE_IMAGE NGINX_IMAGE POSTGRES_IMAGE PROMETHEUS_IMAGE NGINX_EXPORTER_IMAGE; do
    echo "$var=$(cat "$out/$var")"
done
rm -rf "$out"
