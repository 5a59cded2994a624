#!/usr/bin/env bash
# Runs the demo from a fresh checkout: a virtual environment with cachewatch, then
# `cachewatch demo` (extra arguments are passed on, e.g. --duration 10m --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q -e . >/dev/null
exec .venv/bin/cachewatch demo "$@"
