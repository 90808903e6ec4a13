#!/bin/sh
# The subset of the official image's healthcheck.sh that compose files use:
#   healthcheck.sh [--connect] [--innodb_initialized] [--su-mysql]
# It logs in as the healthcheck user that the entry point creates on initialisation,
# with the credentials in /var/lib/mysql/.my-healthcheck.cnf, exactly as upstream.
#   --connect             the server accepts connections and is not the temporary
#                         server of the initialisation (which runs with skip-networking)
#   --innodb_initialized  the InnoDB engine is available
# With no test given, --connect is assumed. Exit 0 when every test passes.
set -eu

datadir=/var/lib/mysql
defaults="$datadir/.my-healthcheck.cnf"
connect=0
innodb=0

for arg in "$@"; do
    case "$arg" in
        --connect) connect=1 ;;
        --innodb_initialized) innodb=1 ;;
        --su-mysql|--su=mysql) ;;
        *) echo "healthcheck.sh: unsupported option $arg (this is the offline stand-in)" >&2; exit 2 ;;
    esac
done
if [ "$connect" -eq 0 ] && [ "$innodb" -eq 0 ]; then
    connect=1
fi
if [ ! -r "$defaults" ]; then
    echo "healthcheck.sh: $defaults is missing; is the server still initialising?" >&2
    exit 1
fi

query() {
    mariadb --defaults-extra-file="$defaults" --skip-column-names --batch -e "$1"
}

if [ "$connect" -eq 1 ]; then
    [ "$(query 'SELECT @@skip_networking')" = "0" ] || exit 1
fi
if [ "$innodb" -eq 1 ]; then
    [ "$(query "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT')")" = "1" ] || exit 1
fi
exit 0
