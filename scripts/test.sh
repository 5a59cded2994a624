#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs the real servers the tests
# talk to (Debian packages), a virtual environment with the test dependencies, then runs
# the linters, the type checker, the import contracts and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# redis-server: Redis source tests (standalone, replicas, cluster); redis-sentinel: the
# Sentinel tests (a target, and following the master across a failover); openssl: certificates for the Redis TLS test; prometheus:
# promtool and the end-to-end Prometheus; prometheus-alertmanager: amtool and Alertmanager;
# prometheus-redis-exporter: the side-by-side benchmark and the metric-name comparison test;
# docker-compose: validates docker-compose.yml (no Docker engine needed for that);
# chromium, chromium-driver: the status page in a real browser (tests/test_status_page.py);
# e2fsprogs: chattr, to make a directory unwritable even for root (multi-process faults).
PACKAGES="redis-server redis-sentinel openssl prometheus prometheus-alertmanager prometheus-redis-exporter docker-compose python3-venv chromium chromium-driver e2fsprogs"
missing=""
for package in $PACKAGES; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# kubectl: its built-in kustomize renders deploy/kubernetes/ in the tests. Where the machine
# has none, Debian's (package kubernetes-client) renders the same files.
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x /usr/bin/kubectl ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check exporter tests bench scripts
.venv/bin/ruff format --check exporter tests bench scripts
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
