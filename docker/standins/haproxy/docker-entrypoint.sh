#!/bin/sh
# The official image's entry point, in behaviour: options alone are haproxy's options,
# and `haproxy` runs in master-worker mode (-W, reload on SIGUSR2) in the foreground (-db).
set -e

case "$1" in
  -*) set -- haproxy "$@" ;;
esac

if [ "$1" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi

exec "$@"
