# CPU-only container for the aqil DVC pipeline (BuildKit required: DOCKER_BUILDKIT=1).
#
#   docker build -t aqil .
#   docker run --rm aqil                                  # pipeline on the image's copy, prints Table 2
#   docker run --rm aqil python -m pytest -q              # test suite
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD":/work -w /work aqil dvc repro report
#                                                         # pipeline on the host checkout
# Build arguments:
#   BASE_IMAGE       python:3.11-slim-bookworm pinned by digest (below).
#   TORCH_INDEX_URL  pip index that torch alone is installed from (PyTorch's CPU wheels).
#   PIP_INDEX_URL    pip index for everything in requirements.lock.
# Optional extra CA bundle for pip (TLS-intercepting proxies):
#   docker build --secret id=pip_ca,src=/path/to/ca-bundle.crt -t aqil .

# Multi-arch index digest of python:3.11-slim-bookworm as published in August 2026.
# Digests move with every upstream rebuild: verify / refresh before release with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${BASE_IMAGE}

ARG APP_UID=10001
ARG APP_GID=10001

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# HOME and USER are set explicitly: with `docker run --user UID:GID` the uid has no
# passwd entry, and DVC (getpass.getuser()) and git need a user name and a writable home.
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DVC_NO_ANALYTICS=1 \
    MPLBACKEND=Agg \
    HOME=/home/aqil \
    USER=aqil

# git: DVC needs it. safe.directory='*': a mounted checkout belongs to another uid.
# tini: PID 1 that passes Ctrl-C / docker stop on to the whole process group (DVC
# leaves SIGINT to its stage's process group, as a terminal would deliver it).
# The system-level identity is only a fallback for commits made inside the container.
# Package versions come from the digest-pinned Debian release (plus its security updates).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git tini \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*' \
    && git config --system user.name "aqil container" \
    && git config --system user.email "aqil@localhost" \
    && git config --system init.defaultBranch main \
    && groupadd --gid "${APP_GID}" aqil \
    && useradd --uid "${APP_UID}" --gid aqil --home-dir /home/aqil --create-home --shell /bin/bash aqil \
    && chmod 1777 /home/aqil \
    && install -d -o aqil -g aqil /app \
    && python3 -m venv "${VIRTUAL_ENV}"

# (Build arguments are declared where they are used, so that changing one only
# invalidates the layers that depend on it.)
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

# torch alone from the CPU wheel index, so pip can never pull the multi-GB CUDA build;
# its dependencies (and setuptools, which it requires) are pinned in requirements.lock.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip install --no-cache-dir --no-deps --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

# This layer only changes when the lock changes.
COPY requirements.lock /opt/aqil/requirements.lock
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip install --no-cache-dir --index-url "${PIP_INDEX_URL}" -r /opt/aqil/requirements.lock \
    && pip check

COPY docker/entrypoint.sh /usr/local/bin/aqil-entrypoint
COPY docker/reproduce.sh /usr/local/bin/aqil-reproduce
RUN chmod 0755 /usr/local/bin/aqil-entrypoint /usr/local/bin/aqil-reproduce

# The image's own copy of the project: a git + DVC repository owned by the app user,
# used when nothing is mounted (.git, results and the DVC cache are not in the context).
WORKDIR /app
COPY --chown=${APP_UID}:${APP_GID} . /app
USER ${APP_UID}:${APP_GID}
RUN git init -q \
    && if [ ! -d .dvc ]; then dvc init -q; fi \
    && git add -A \
    && git commit -q -m "aqil image snapshot" \
    && rm -rf /var/tmp/dvc

# Stage commands import the project from the working directory (the entrypoint
# points this at a mounted checkout instead).
ENV PYTHONPATH=/app

ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/aqil-entrypoint"]
CMD ["aqil-reproduce"]
