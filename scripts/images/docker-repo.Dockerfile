# The test-bed's stand-in for Docker's apt repository: the tools that repackage Debian's
# Docker packages under Docker's names and sign the index (docker-repo-build.sh, mounted
# at run time), and busybox's httpd, which serves the result over plain HTTP.
ARG BASE=debian:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      apt-utils binutils busybox debian-archive-keyring gpg gpg-agent \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 80
CMD ["busybox", "httpd", "-f", "-p", "80", "-h", "/srv"]
