#!/usr/bin/env bash
# Start a local PostgreSQL server for `search --storage postgresql+psycopg://...` (development
# and single-machine use; the cluster setup in docker/compose.yaml runs its own PostgreSQL).
#
#   scripts/start_postgres.sh [DIR] [PORT]      # default DIR=.pg PORT=5433
#   -> prints the --storage URL; stop with: scripts/start_postgres.sh --stop [DIR]
#
# Same recipe as tests/fixtures_pg.py: initdb with trust auth on 127.0.0.1 only, the socket in
# DIR, and, when run as root, every server command as the `postgres` user (initdb refuses root).
set -euo pipefail

pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}
if [[ -z "$pg_bin" || ! -x "$pg_bin/initdb" ]]; then
    pg_bin=$(dirname "$(command -v pg_ctl || echo /nonexistent/pg_ctl)")
fi
if [[ ! -x "$pg_bin/initdb" ]]; then
    echo "error: PostgreSQL server binaries not found; apt-get install postgresql or set PG_BIN" >&2
    exit 2
fi

as_server() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-}" == "--stop" ]]; then
    dir=$(realpath "${2:-.pg}")
    as_server "$pg_bin/pg_ctl" -D "$dir/data" -m fast stop
    exit 0
fi

dir=$(realpath -m "${1:-.pg}")
port=${2:-5433}
user=$([[ $(id -u) -eq 0 ]] && echo postgres || id -un)
mkdir -p "$dir"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_server "$pg_bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 >/dev/null
fi
if ! as_server "$pg_bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_server "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
fi
as_server "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" effnas 2>/dev/null || true
echo "postgresql+psycopg://$user@127.0.0.1:$port/effnas"
