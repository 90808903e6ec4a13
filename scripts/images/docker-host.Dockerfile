# A systemd test host with Docker already installed as docker_engine's default source
# installs it on Debian 13 (Debian's engine, CLI and Compose v2 plugin). Scenarios that
# do not test that install start here and save a download per host; the role still runs
# on them, finds the packages and writes its configuration.
ARG BASE=local/systemd-host:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      docker.io docker-cli docker-compose \
 && rm -rf /var/lib/apt/lists/*
