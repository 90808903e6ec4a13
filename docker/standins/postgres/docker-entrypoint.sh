#!/bin/bash
# Entry point of the PostgreSQL stand-in: the official image's contract, in small.
#
# On the first start with an empty PGDATA it runs initdb with POSTGRES_USER as the
# superuser and POSTGRES_PASSWORD as its password, lets every host in with
# POSTGRES_HOST_AUTH_METHOD (scram-sha-256 by default), then with a temporary server
# that listens on no network creates POSTGRES_DB and runs
# /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh. Every variable may also be given as
# VAR_FILE (a path, e.g. a compose secret). Then it runs the server as user postgres.
set -euo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T')" "$*"; }
die() { printf '%s [entrypoint] error: %s\n' "$(date -u '+%F %T')" "$*" >&2; exit 1; }

# VAR or VAR_FILE (not both) into VAR.
file_env() {
    local var="$1" default="${2:-}"
    local file_var="${var}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        die "both $var and $file_var are set; use one"
    fi
    local value="${!var:-$default}"
    if [ -n "${!file_var:-}" ]; then
        value="$(< "${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    install -d -m 0700 "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    install -d -m 3777 /run/postgresql
    chown postgres:postgres /run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
        die "the database is uninitialised and no superuser password is given: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust"
    fi

    log "initialising $PGDATA"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS holds several options, as upstream
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        $POSTGRES_INITDB_ARGS >/dev/null
    printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

    log "starting a temporary server for the initialisation"
    PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" \
        pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    export PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" PGHOST=/run/postgresql
    psql=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --quiet)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" \
            <<< 'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        log "running $f"
        case "$f" in
            *.sh)
                # shellcheck source=/dev/null
                . "$f"
                ;;
            *.sql) "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) gzip -dc "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
            *) log "ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGUSER PGPASSWORD PGHOST
    log "initialisation done; starting the server"
fi

exec "$@"
