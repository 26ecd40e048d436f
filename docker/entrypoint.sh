#!/bin/sh
# Entrypoint of the aqil image: prepares the environment, then runs the command
# (default: aqil-reproduce, i.e. `dvc repro report` + print the closing summary).
#
# Works in both ways of running the image:
#   * nothing mounted: the working directory is the image's own copy, /app;
#   * a host checkout mounted as working directory (-v "$PWD":/work -w /work), usually
#     with --user "$(id -u):$(id -g)" so that outputs and the DVC cache on the host
#     belong to the host user. That uid normally has no passwd entry in the image.
set -eu

# A writable HOME and a user name for a uid without a passwd entry (DVC calls
# getpass.getuser(), git and matplotlib write below $HOME).
if [ -z "${HOME:-}" ] || [ ! -d "$HOME" ] || [ ! -w "$HOME" ]; then
    HOME=$(mktemp -d /tmp/home.XXXXXX)
    export HOME
fi
if [ -z "${USER:-}" ]; then
    USER=$(id -un 2>/dev/null || echo "uid$(id -u)")
    export USER
fi

# The image's copy is owned by the image user. Under another uid, run on a private
# copy of it instead, so that DVC can write its outputs.
if [ "$(pwd -P)" = /app ] && [ ! -w /app ]; then
    copy=$(mktemp -d /tmp/aqil.XXXXXX)
    echo "aqil-entrypoint: /app is not writable by uid $(id -u); running on a copy in $copy" >&2
    cp -R /app/. "$copy"/
    cd "$copy"
fi

# Stage commands import `aqil` from the checkout in the working directory, so code
# edits in a mounted checkout take effect without rebuilding the image.
if [ -d aqil ]; then
    PYTHONPATH=$(pwd -P)
    export PYTHONPATH
fi

exec "$@"
