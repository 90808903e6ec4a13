# A Molecule / local-rollout host that runs its own Docker engine: the molecule-host
# image plus an init. With `sleep` as PID 1 nothing reaps orphans, so a stopped dockerd
# stays a zombie and Debian's init script reports that it "refused to die".
ARG BASE=local/molecule-host:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sleep", "infinity"]
