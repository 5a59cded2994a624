#!/usr/bin/env bash
# Runs the demo from a fresh checkout: a virtual environment with cachewatch, then
# `cachewatch demo` (extra arguments are passed on, e.g. --duration 10m --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  # Debian ships venv's pip bootstrap separately.
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q -e . >/dev/null
exec .venv/bin/cachewatch demo "$@"
