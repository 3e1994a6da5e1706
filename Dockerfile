# syntax=docker/dockerfile:1
# Stages:
#   base     Python 3.11 on Debian bookworm, shared by the others
#   build    installs the package into /opt/venv (no build tools reach the runtime image)
#   runtime  the image to run and to convert for Apptainer:
#              docker build --target runtime -t aiperf-hpc:latest .
#              apptainer build aiperf-hpc.sif docker-daemon://aiperf-hpc:latest
#   dev      the devcontainer: dev tools, git and make; the workspace itself is installed
#            editable into .venv by `make install` (postCreateCommand)

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

FROM base AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY aiperf_hpc ./aiperf_hpc
RUN pip install --no-cache-dir .

# Apptainer ignores USER and runs as the calling user with a read-only image, so everything the
# CLI needs lives in /opt/venv (world-readable) and is found through PATH, which Apptainer keeps.
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin aiperf \
    && mkdir /work \
    && chown aiperf:aiperf /work
USER 1000:1000
WORKDIR /work
ENTRYPOINT ["aiperf-hpc"]
CMD ["--help"]

# The dependencies and dev tools are installed into /opt/venv so the container is usable at once;
# the package itself is removed again there, because the mounted workspace is the code to work on.
FROM base AS dev
# Slurm and munge for scripts/local-slurm.sh, which the devcontainer starts (a cluster on one machine).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make sudo slurmctld slurmd slurm-client munge \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /tmp/aiperf-hpc
COPY pyproject.toml README.md ./
COPY aiperf_hpc ./aiperf_hpc
# DL3013 wants pinned pip packages; the versions here are the ranges in pyproject.toml (no lock file yet).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[dev]' \
    && pip uninstall --yes aiperf-hpc \
    && rm -rf /tmp/aiperf-hpc
# The local cluster's daemons run as root: the dev user may start them through sudo without a password.
RUN useradd --create-home --uid 1000 --shell /bin/bash dev \
    && echo 'dev ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/dev \
    && chmod 0440 /etc/sudoers.d/dev
USER 1000:1000
WORKDIR /workspaces
