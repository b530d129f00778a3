#!/usr/bin/env bash
# Build the CPU image and the PostgreSQL image with podman on a machine without an image
# registry: the base is made locally with debootstrap (Debian bookworm, minbase) and imported,
# pip installs through the host's own pip settings (index, wheel folders, CA certificate: the
# folders are mounted into the build read-only, nothing is copied into the image), and the CPU
# torch wheel comes from the host's find-links. Safe to run again: an existing base is kept and
# podman's layer cache makes an unchanged rebuild take seconds.
#
#   bash docker/build-local.sh          # then: bash docker/podman-stack.sh up (docker/README.md)
#
# Environment: EFFNAS_IMAGE (default localhost/effnas:cpu), EFFNAS_PG_IMAGE (default
# localhost/effnas-postgres:15), EFFNAS_BASE_IMAGE (default localhost/effnas-base:bookworm),
# EFFNAS_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${EFFNAS_BASE_IMAGE:-localhost/effnas-base:bookworm}
image=${EFFNAS_IMAGE:-localhost/effnas:cpu}
pg_image=${EFFNAS_PG_IMAGE:-localhost/effnas-postgres:15}
mirror=${EFFNAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/docker/podman/containers.conf}

say() { echo "build-local: $*" >&2; }
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
have_base=0
if command -v podman >/dev/null && podman image exists "$base"; then have_base=1; fi
((have_base)) || command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  say "missing ${missing[*]}: apt-get install ${missing[*]} (Debian/Ubuntu), then run this again"
  exit 3
fi
if [ "$(id -u)" != 0 ]; then
  say "needs root (debootstrap, and the stack's rootful podman network); run it with sudo"
  exit 3
fi

# 1. The base image: Debian bookworm, minbase, from the Debian mirror (no registry involved).
if ((have_base)); then
  say "base $base exists, kept"
else
  started=$SECONDS
  root=$(mktemp -d /var/tmp/effnas-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; say "debootstrap failed (log above)"; exit 1; }
  rm -f "$root.log"
  tar -C "$root" -c . | podman import --quiet - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
  say "base $base made in $((SECONDS - started)) s (debootstrap + import)"
fi

# 2. What the host's pip uses (its config or PIP_* variables): passed as build arguments, with
# every local folder they name mounted at the same path, and its CA bundle at CERT (not at its
# own path, which is where the image's ca-certificates package writes its bundle).
CERT=/run/effnas-build/host-ca.crt
pip_setting() {  # KEY: the environment's PIP_KEY, else pip's configured global.key
  local name=PIP_${1^^}
  name=${name//-/_}
  if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
  python3 -m pip config get "global.$1" 2>/dev/null || true
}
build_args=(--build-arg "BASE=$base" --build-arg "TORCH_INDEX=")
mounts=()
for key in cert index-url extra-index-url find-links; do
  value=$(pip_setting "$key" | tr '\n' ' ' | xargs)
  [ -n "$value" ] || continue
  arg=PIP_${key^^}
  if [ "$key" = cert ]; then
    [ -f "$value" ] || continue
    mounts+=(--volume "$value:$CERT:ro")
    build_args+=(--build-arg "PIP_CERT=$CERT")
    continue
  fi
  build_args+=(--build-arg "${arg//-/_}=$value")
  for item in $value; do
    path=${item#file://}
    path=${path%/}
    [ "${path:0:1}" = / ] && [ -e "$path" ] || continue
    # a local index (DIR/simple) links its files outside simple/: mount DIR
    [ "${path##*/}" = simple ] && path=${path%/simple}
    mounts+=(--volume "$path:$path:ro")
  done
done

# 3. The images. --network host: the build reaches the package index as the host does.
build() {  # TAG DOCKERFILE
  local started=$SECONDS
  podman build --network host --ignorefile docker/Dockerfile.dockerignore \
    "${build_args[@]}" "${mounts[@]}" -t "$1" -f "$2" . >&2
  say "image $1 built in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$1" \
    | awk '{printf "%.2f GB", $1 / 1e9}')"
}
build "$image" docker/Dockerfile
build "$pg_image" docker/postgres/Dockerfile
