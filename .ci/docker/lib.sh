# shellcheck shell=bash
# Shared helpers for the CI container scripts in .ci/docker/ (sourced, not executed).
#
# CI stand-in context: the CI machine has no Docker engine running and no container
# registry reachable (neither Docker Hub nor download.pytorch.org), only the Debian
# and PyPI package registries. The scripts here therefore
#   * install Debian's docker.io and start dockerd themselves,
#   * build a stand-in for python:3.11-slim-bookworm with debootstrap,
#   * serve the torch CPU wheel from a loopback PEP 503 index,
# and then build the real Dockerfile against those stand-ins.

# Everything cached between runs lives outside the repository.
AQIL_CI_CACHE=${AQIL_CI_CACHE:-/var/cache/aqil-ci}
# Debian's docker CLI: its `docker build` speaks BuildKit (DOCKER_BUILDKIT=1) without
# needing the buildx plugin.
DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1

# The elapsed seconds in every step header show where a slow run spent its time, even in a cut-off log.
step() { printf '\n==> %s  [%ss]\n' "$*" "$SECONDS"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "the CI container scripts need root (apt-get, dockerd, debootstrap)"
}

# apt_install PKG... -- install Debian packages that are missing.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    info "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
