#!/bin/bash
# Entry point of the MariaDB stand-in: the official image's contract, in small.
#
# On the first start with an empty /var/lib/mysql it creates the system tables, then
# with a temporary server that listens on no network: sets the root password
# (MARIADB_ROOT_PASSWORD, or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, or
# MARIADB_RANDOM_ROOT_PASSWORD), creates MARIADB_DATABASE and MARIADB_USER with
# MARIADB_PASSWORD (granted all on that database), a healthcheck user for
# healthcheck.sh, and runs /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh.
# Every variable may also be given as VAR_FILE (a path, e.g. a compose secret).
# Then it runs the server as user mysql.
set -euo pipefail

log() { printf '%s [Note] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*"; }
die() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*" >&2; exit 1; }

# VAR or VAR_FILE (not both) into VAR; MYSQL_* names are accepted like upstream.
file_env() {
    local var="$1" default="${2:-}" legacy="MYSQL_${1#MARIADB_}"
    local file_var="${var}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        die "both $var and $file_var are set; use one"
    fi
    local value="${!var:-${!legacy:-$default}}"
    if [ -n "${!file_var:-}" ]; then
        value="$(< "${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

sql_escape() { printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g"; }

if [ "${1:0:1}" = '-' ]; then
    set -- mariadbd "$@"
fi

if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
    exec "$@"
fi

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

if [ "$(id -u)" = 0 ]; then
    chown mysql:mysql "$datadir" /run/mysqld
    exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -d "$datadir/mysql" ]; then
    for v in ROOT_PASSWORD ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD DATABASE USER PASSWORD ROOT_HOST; do
        file_env "MARIADB_$v"
    done
    : "${MARIADB_ROOT_HOST:=%}"
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
        && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
        die "the database is uninitialised and no password option is given: set one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD"
    fi
    if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
        MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
        log "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
    fi

    log "initialising the database directory"
    mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
        --skip-name-resolve >/dev/null

    log "starting a temporary server for the initialisation"
    mariadbd --skip-networking --socket="$socket" --datadir="$datadir" &
    pid=$!
    for _ in $(seq 60); do
        if mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || die "the temporary server stopped during the initialisation"
        sleep 1
    done
    mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1 || die "the temporary server did not start"

    # mariadb-install-db also makes password-less root accounts for the container's
    # host name and loopback addresses; upstream removes them, and so does this.
    extra_roots="$(mariadb --socket="$socket" -uroot --skip-column-names --batch \
        -e "SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'")"
    health_password="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    root_pw="$(sql_escape "$MARIADB_ROOT_PASSWORD")"
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        while IFS= read -r host; do
            [ -n "$host" ] && echo "DROP USER 'root'@'$(sql_escape "$host")';"
        done <<< "$extra_roots"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
        if [ "$MARIADB_ROOT_HOST" != localhost ]; then
            echo "CREATE USER 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' IDENTIFIED BY '$root_pw';"
            echo "GRANT ALL ON *.* TO 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' WITH GRANT OPTION;"
        fi
        for host in 127.0.0.1 ::1 localhost; do
            echo "CREATE USER 'healthcheck'@'$host' IDENTIFIED BY '$health_password';"
            echo "GRANT USAGE ON *.* TO 'healthcheck'@'$host';"
        done
        if [ -n "$MARIADB_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
        fi
        if [ -n "$MARIADB_USER" ]; then
            [ -n "$MARIADB_PASSWORD" ] || die "MARIADB_USER is set but MARIADB_PASSWORD is not"
            echo "CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
            if [ -n "$MARIADB_DATABASE" ]; then
                echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$socket" -uroot --binary-mode

    umask 077
    printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\nprotocol=tcp\nhost=127.0.0.1\n' \
        "$socket" "$health_password" > "$datadir/.my-healthcheck.cnf"
    umask 022

    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        log "running $f"
        case "$f" in
            *.sh)
                # shellcheck source=/dev/null
                . "$f"
                ;;
            *.sql) mariadb --socket="$socket" -uroot -p"$MARIADB_ROOT_PASSWORD" "${MARIADB_DATABASE:-}" < "$f" ;;
            *.sql.gz) gzip -dc "$f" | mariadb --socket="$socket" -uroot -p"$MARIADB_ROOT_PASSWORD" "${MARIADB_DATABASE:-}" ;;
            *) log "ignoring $f" ;;
        esac
    done

    kill -TERM "$pid"
    wait "$pid" || die "the temporary server did not stop cleanly"
    log "initialisation done; starting the server"
fi

exec "$@"
