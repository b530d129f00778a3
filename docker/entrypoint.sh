#!/bin/sh
# The image's entrypoint: `search ARGS`, or `optuna-dashboard ARGS` / `ray ARGS` when named.
# POSIX sh (Debian's dash runs it).
#
# The database password: when the compose file's secret is mounted (EFFNAS_DB_PASSWORD_FILE,
# default /run/secrets/db_password) and PGPASSWORD is not set, it becomes PGPASSWORD for this
# process only (psycopg reads it), so storage URLs carry no password and nothing prints one.
#
# A driver (`search run ...` or `search final ...` with `--ray-address HOST:PORT`) must run on a
# node of the Ray cluster: Ray connects a driver to the cluster through the raylet of a node on
# its own machine and refuses to start one without it. A container that is no node (the compose
# file's `search` service, a `docker run` on a laptop) therefore first joins the cluster as a
# node with no CPUs and no GPUs: no trial is ever placed there, it only hosts the driver and the
# data the driver ships to the trials. When the container ends, the node goes with it.
# EFFNAS_JOIN_RAY: 0 never joins, 1 always does; unset, it joins unless a raylet runs here.
set -eu

secret=${EFFNAS_DB_PASSWORD_FILE:-/run/secrets/db_password}
if [ -z "${PGPASSWORD:-}" ] && [ -r "$secret" ]; then
    PGPASSWORD=$(cat "$secret")
    export PGPASSWORD
fi

# optuna-dashboard opens the storage without creating Optuna's tables and exits when the
# database has none yet (no search has run) or does not answer yet (just started): wait for the
# database, up to EFFNAS_DB_WAIT_S seconds, and create Optuna's tables (those the first
# `search run` would create, by the same Optuna) before it starts.
prepare_storage() {
    python3 - "$@" <<'PY'
import os, sys, time
import optuna
from search.study.urls import mask_url
url = next((arg for arg in sys.argv[1:] if "://" in arg), None)
deadline = time.monotonic() + float(os.environ.get("EFFNAS_DB_WAIT_S", "120"))
while url:
    try:
        optuna.storages.RDBStorage(url)
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            reason = " ".join(str(exc).split())[:200]
            sys.exit(f"error: the study database {mask_url(url)} does not answer: {reason}")
        time.sleep(2)
PY
}

case "${1:-}" in
optuna-dashboard)
    prepare_storage "$@" || exit 2
    exec "$@"
    ;;
ray) exec "$@" ;;
esac

address=""
case "${1:-}" in
run | final)
    previous=""
    for arg in "$@"; do
        case "$arg" in
        --ray-address=*) address=${arg#--ray-address=} ;;
        esac
        if [ "$previous" = "--ray-address" ]; then address=$arg; fi
        previous=$arg
    done
    ;;
esac

raylet_here() {
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = raylet ] && return 0
    done
    return 1
}

join=${EFFNAS_JOIN_RAY:-auto}
if [ -n "$address" ] && { [ "$join" = 1 ] || { [ "$join" = auto ] && ! raylet_here; }; }; then
    log=${TMPDIR:-/tmp}/effnas-ray-node.log
    if ! ray start --address="$address" --num-cpus=0 --num-gpus=0 --disable-usage-stats \
        >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        echo "error: cannot join the Ray cluster at $address as the driver's node (above)" >&2
        exit 2
    fi
fi
exec search "$@"
