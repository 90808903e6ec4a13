# The test hosts' shared apt cache: Debian's apt-cacher-ng. Every host asks it for
# Debian's packages (scripts/images/apt-proxy), so a package a scenario installs is
# downloaded once per machine, not once per host; the cache lives on the machine.
ARG BASE=debian:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-cacher-ng \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 3142
# As root (no USER): the cache directory is bound from the machine with its owner.
CMD ["/usr/sbin/apt-cacher-ng", "-c", "/etc/apt-cacher-ng", "ForeGround=1", \
     "CacheDir=/var/cache/apt-cacher-ng", "LogDir=/var/log/apt-cacher-ng"]
