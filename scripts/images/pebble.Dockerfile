# Let's Encrypt's test CA, Pebble, with its challenge test server as its DNS: the
# test-bed's stand-in for Let's Encrypt (https://pebble:14000/dir on nb-testbed).
# Debian's package ships the two programs and no configuration or certificates:
# pebble-entrypoint writes both (the API's TLS certificate into the mounted /certs, so
# that the machine can hand its CA to ACME clients).
ARG BASE=debian:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pebble openssl \
 && rm -rf /var/lib/apt/lists/*
COPY pebble-entrypoint /usr/local/bin/pebble-entrypoint
# ACME API, management API (roots, intermediates), challtestsrv's management API.
EXPOSE 14000 15000 8055
ENTRYPOINT ["/usr/local/bin/pebble-entrypoint"]
