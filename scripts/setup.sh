#!/usr/bin/env bash
# One-step set-up: the Debian packages the project reads or starts (real Fashion-MNIST, the
# PostgreSQL server used by the storage tests), then this package with its dev extras.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages ${missing[*]} (apt-get install ${missing[*]})" >&2
  fi
fi

python -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "setup: done ($(python -c 'import torch; print("torch", torch.__version__)'))" >&2
