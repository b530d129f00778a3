#!/bin/sh
# Start PostgreSQL the way the official image does, from Debian's binaries: on the first start
# (an empty PGDATA) make the cluster with user POSTGRES_USER, password POSTGRES_PASSWORD (or the
# contents of the file POSTGRES_PASSWORD_FILE) and database POSTGRES_DB; then run the server in
# the foreground, listening on every address of the container (the compose file publishes it on
# the host's loopback only).
#
# Authentication: connections over the network need the password (scram-sha-256); the unix
# socket inside the container is trusted (the healthcheck, `podman exec ... psql`). The password
# reaches initdb through a file that is removed at once: it is never on a command line, and
# nothing here prints it.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ "$(id -u)" = 0 ]; then  # a fresh volume belongs to root: hand it over, then drop root
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then  # a secret file only root may read
        POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
        export POSTGRES_PASSWORD
        unset POSTGRES_PASSWORD_FILE
    fi
    mkdir -p "$PGDATA" /run/postgresql
    chown -R postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "effnas-postgres: no password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
        exit 2
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then  # on the socket only, before anyone can connect
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "effnas-postgres: made the cluster in $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
unset POSTGRES_PASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
