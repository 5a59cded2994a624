"""Generators of the deployable bundle: Prometheus rules, promtool tests, Grafana dashboards.

Everything here is derived from ``catalog`` (metric names) and ``analysis.definitions``
(alert names, thresholds, timings), so ``cachewatch generate`` rewrites the whole bundle for
other thresholds and ``cachewatch generate --check`` catches hand edits and stale files.
"""
