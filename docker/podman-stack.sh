#!/usr/bin/env bash
# The compose stack (docker/compose.yaml) on podman, CPU only: PostgreSQL, a Ray head, Ray
# workers, optuna-dashboard, and `search` one-off containers as drivers. Images: build them
# first with docker/build-local.sh.
#
#   bash docker/podman-stack.sh up                # start and wait until every part answers
#   bash docker/podman-stack.sh search ARGS...    # `search ARGS` in a driver container
#   bash docker/podman-stack.sh ps | logs         # the containers; every container's log
#   bash docker/podman-stack.sh down [-v]         # remove the containers (-v: the database too)
#
# What it adds to plain `podman-compose -f docker/compose.yaml`: the CPU path's settings (the
# local images, EFFNAS_WORKERS workers of one CPU each, loopback ports that stay clear of the
# defaults), the database password file made on first use, podman's settings for hosts like
# the development machine (docker/podman/containers.conf), and waiting for readiness, which
# podman-compose 1.0.3 does not do (it ignores `depends_on` conditions and `profiles`, and
# without systemd podman runs no healthchecks). Settings, from the environment:
#   EFFNAS_PROJECT (effnas)  EFFNAS_WORKERS (2)  EFFNAS_PG_PORT (15432)
#   EFFNAS_DASHBOARD_PORT (18080)  EFFNAS_RAY_DASHBOARD_PORT (18265)  EFFNAS_OUT (docker/out)
#   EFFNAS_IMAGE (localhost/effnas:cpu)  EFFNAS_PG_IMAGE (localhost/effnas-postgres:15)
#   EFFNAS_DB_PASSWORD_FILE (docker/secrets/db_password)  EFFNAS_WAIT_S (300)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/podman/containers.conf}
export EFFNAS_IMAGE=${EFFNAS_IMAGE:-localhost/effnas:cpu}
export EFFNAS_PG_IMAGE=${EFFNAS_PG_IMAGE:-localhost/effnas-postgres:15}
export EFFNAS_WORKERS=${EFFNAS_WORKERS:-2}
export EFFNAS_PG_PORT=${EFFNAS_PG_PORT:-15432}
export EFFNAS_DASHBOARD_PORT=${EFFNAS_DASHBOARD_PORT:-18080}
export EFFNAS_RAY_DASHBOARD_PORT=${EFFNAS_RAY_DASHBOARD_PORT:-18265}
export EFFNAS_OUT=${EFFNAS_OUT:-$here/out}
export EFFNAS_DB_PASSWORD_FILE=${EFFNAS_DB_PASSWORD_FILE:-$here/secrets/db_password}
export RAY_OVERRIDE_RESOURCES=${RAY_OVERRIDE_RESOURCES:-'{"CPU": 1}'}  # the workers' size
project=${EFFNAS_PROJECT:-effnas}
wait_s=${EFFNAS_WAIT_S:-300}

say() { echo "podman-stack: $*" >&2; }
compose() { podman-compose --no-ansi -p "$project" -f "$here/compose.yaml" "$@"; }
container() { echo "${project}_$1_${2:-1}"; }  # podman-compose's names: PROJECT_SERVICE_N

require() {
  local missing=()
  for tool in podman podman-compose runc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})); then
    say "missing ${missing[*]}: apt-get install ${missing[*]}, then docker/build-local.sh"
    exit 3
  fi
  for image in "$EFFNAS_IMAGE" "$EFFNAS_PG_IMAGE"; do
    podman image exists "$image" || { say "no image $image: run docker/build-local.sh"; exit 3; }
  done
}

password_file() {  # a random password on first use, readable by root only
  [ -s "$EFFNAS_DB_PASSWORD_FILE" ] && return
  mkdir -p "$(dirname "$EFFNAS_DB_PASSWORD_FILE")"
  (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$EFFNAS_DB_PASSWORD_FILE")
  say "made a database password in $EFFNAS_DB_PASSWORD_FILE"
}

until_ready() {  # WHAT COMMAND...: run COMMAND every second until it succeeds (or time is up)
  local what=$1 deadline=$((SECONDS + wait_s))
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then say "$what not ready after $wait_s s"; exit 1; fi
    sleep 1
  done
}

alive_nodes() {  # the Ray nodes the head counts as alive
  podman exec "$(container head)" ray status --address=127.0.0.1:6379 2>/dev/null \
    | awk '/^Active:/ {on = 1; next} /^[A-Z]/ {on = 0} on && /node_/ {n++} END {print n + 0}'
}
cluster_joined() { (($(alive_nodes) >= EFFNAS_WORKERS + 1)); }

up() {
  require
  password_file
  mkdir -p "$EFFNAS_OUT"
  local started=$SECONDS
  # podman-compose echoes every podman command it runs; they hold no secret (the password is
  # a mounted file), but they are long: kept in a log, shown when something fails
  local log=$EFFNAS_OUT/podman-compose-up.log
  compose up -d --no-build postgres head worker dashboard >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; say "podman-compose up failed (log above)"; exit 1; }
  until_ready "postgres" podman exec "$(container postgres)" pg_isready -U effnas -d effnas
  until_ready "the Ray cluster (head + $EFFNAS_WORKERS workers)" cluster_joined
  until_ready "optuna-dashboard" podman exec "$(container dashboard)" python3 -c \
    "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/api/studies', timeout=5)"
  say "up in $((SECONDS - started)) s: postgres 127.0.0.1:$EFFNAS_PG_PORT," \
    "optuna-dashboard http://127.0.0.1:$EFFNAS_DASHBOARD_PORT," \
    "Ray dashboard http://127.0.0.1:$EFFNAS_RAY_DASHBOARD_PORT, $EFFNAS_WORKERS workers"
}

search() {  # a one-off driver container; its exit code is this script's
  require
  local name
  name="${project}_search_$$_$RANDOM"
  set +e
  # podman-compose's own lines (its version probe, the podman command, the exit code) dropped
  compose run --name "$name" -T --no-deps search "$@" \
    | grep -v -E "^(podman run |exit code: |using podman version: |\['podman', )"
  local rc
  rc=$(podman inspect --format '{{.State.ExitCode}}' "$name" 2>/dev/null || echo 1)
  podman rm -f -v "$name" >/dev/null 2>&1
  set -e
  return "$rc"
}

containers() { podman ps -a --filter "label=io.podman.compose.project=$project" "$@"; }

logs() {
  for name in $(containers --format '{{.Names}}'); do
    echo "===== $name"
    podman logs "$name" 2>&1
  done
}

down() {
  local names
  names=$(containers --format '{{.Names}}')
  # SIGKILL after 10 s (what `ray start --block` needs to stop its node); then remove
  # (without systemd, podman complains that it cannot remove healthcheck timers it never made)
  if [ -n "$names" ]; then
    podman rm -f -v -t 10 $names 2>&1 >/dev/null | { grep -v 'systemd connection' >&2 || true; }
  fi
  podman network rm -f "${project}_default" >/dev/null 2>&1 || true
  if [ "${1:-}" = -v ]; then podman volume rm -f "${project}_pgdata" >/dev/null 2>&1 || true; fi
  say "down: $(echo "$names" | wc -w) containers removed${1:+, the database volume too}"
}

case "${1:-}" in
up) up ;;
search) shift && search "$@" ;;
ps) containers ;;
logs) logs ;;
down) shift && down "$@" ;;
*)
  sed -n '2,9p' "$0" | sed 's/^# \?//' >&2
  exit 2
  ;;
esac
