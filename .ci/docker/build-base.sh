#!/usr/bin/env bash
# CI stand-in: build a local substitute for python:3.11-slim-bookworm.
#
# No container registry is reachable in CI, so the official base image cannot be
# pulled. This builds a Debian bookworm root filesystem with debootstrap (python3 of
# bookworm is Python 3.11, like the official image) and imports it into the local
# Docker engine. The Dockerfile only needs `python3 -m venv`, apt-get and a shell
# from its base, so it builds unchanged on either image.
#
# Usage: .ci/docker/build-base.sh [IMAGE_TAG]      (default: aqil-ci/python:3.11-bookworm)
# Env:   AQIL_CI_CACHE           cache directory (default /var/cache/aqil-ci)
#        AQIL_CI_REBUILD_BASE=1  ignore the cached root filesystem and image
#        DEBIAN_MIRROR           default http://deb.debian.org/debian
# Needs root and a running Docker engine (.ci/docker/start-dockerd.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
require_root

tag=${1:-aqil-ci/python:3.11-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,python3-pip,git,ca-certificates
tarball="$AQIL_CI_CACHE/base/bookworm-python3.tar"

if [ "${AQIL_CI_REBUILD_BASE:-0}" != 1 ] && "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    info "stand-in base image $tag already present (AQIL_CI_REBUILD_BASE=1 rebuilds it)"
    exit 0
fi

if [ "${AQIL_CI_REBUILD_BASE:-0}" = 1 ] || [ ! -s "$tarball" ]; then
    apt_install debootstrap
    mkdir -p "$(dirname "$tarball")"
    rootfs=$(mktemp -d "$AQIL_CI_CACHE/base/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    chmod 0755 "$rootfs"    # becomes the image's /
    info "debootstrap bookworm ($packages) from $mirror -- a few minutes"
    debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
        >"$AQIL_CI_CACHE/base/debootstrap.log" 2>&1 \
        || { tail -n 30 "$AQIL_CI_CACHE/base/debootstrap.log" >&2; die "debootstrap failed"; }
    # Same apt sources as the official image (release, updates, security).
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/tmp/* "$rootfs"/var/tmp/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
    info "cached root filesystem: $tarball ($(du -h "$tarball" | cut -f1))"
else
    info "using cached root filesystem $tarball"
fi

info "docker import -> $tag"
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$tag" >/dev/null
