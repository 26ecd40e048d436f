#!/usr/bin/env bash
# CI stand-in: make sure a Docker engine is running on this machine.
#
# CI machines come without a running Docker engine. This installs Debian's docker.io
# if needed and starts dockerd in the background (log: $AQIL_CI_CACHE/dockerd.log).
# Prints "started" when it started the daemon, "running" when one was already up.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
require_root

if [ ! -x /usr/bin/docker ] || ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io >&2
fi

if "$DOCKER" info >/dev/null 2>&1; then
    echo running
    exit 0
fi

mkdir -p "$AQIL_CI_CACHE"
info "starting dockerd (log: $AQIL_CI_CACHE/dockerd.log)" >&2
setsid nohup dockerd >"$AQIL_CI_CACHE/dockerd.log" 2>&1 </dev/null &
echo "$!" >"$AQIL_CI_CACHE/dockerd.pid"
for _ in $(seq 1 60); do
    if "$DOCKER" info >/dev/null 2>&1; then
        echo started
        exit 0
    fi
    kill -0 "$(cat "$AQIL_CI_CACHE/dockerd.pid")" 2>/dev/null || break
    sleep 1
done
tail -n 30 "$AQIL_CI_CACHE/dockerd.log" >&2
die "dockerd did not come up"
