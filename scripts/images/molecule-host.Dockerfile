# A Molecule test host: a Debian system that Ansible can manage and that can run its own
# Docker engine once a role installs one. No systemd: the roles must cope with sysvinit.
ARG BASE=debian:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-apt sudo procps iproute2 ca-certificates iptables \
 && rm -rf /var/lib/apt/lists/*
CMD ["sleep", "infinity"]
