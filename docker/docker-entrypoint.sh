#!/bin/sh
# Entry point of the noticeboard image.
#
#   serve    (default) wait for the database within DB_WAIT_TIMEOUT, then run Gunicorn.
#            With SQLite (one node) `noticeboard serve` also creates or upgrades the
#            schema on start; with a server database it never does unless
#            MIGRATE_ON_START=true: run the one-shot `migrate` job instead.
#   migrate  wait for the database within DB_WAIT_TIMEOUT, then upgrade the schema.
#   check    validate the settings and reach the database; non-zero with the reason.
#   anything else runs as given, e.g. `noticeboard db current` or `python3`.
#
# Every failure ends with one line on stderr that starts with "noticeboard:" and names
# the problem; the exit status is non-zero.
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve)
        shift
        noticeboard db wait >/dev/null
        exec noticeboard serve "$@"
        ;;
    migrate)
        shift
        noticeboard db wait >/dev/null
        exec noticeboard db upgrade "$@"
        ;;
    check)
        shift
        exec noticeboard check "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
