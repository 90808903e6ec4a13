# The reference registry (distribution 2.8) from Debian's package, serving plain HTTP.
# Tests use it so that "pull the multi-arch image" is a real pull.
ARG BASE=debian:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/*
COPY registry-config.yml /etc/docker/registry/config.yml
# The package creates this system user; its uid is Debian's choice.
# hadolint ignore=DL3066
USER docker-registry
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
