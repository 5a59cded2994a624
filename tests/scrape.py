"""Reading the exporter the way Prometheus does: over HTTP, parsed by the reference parser."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(port: int, path: str = "/metrics", host: str = "127.0.0.1", **kwargs: object) -> str:
    response = requests.get(f"http://{host}:{port}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]
    response.raise_for_status()
    return response.text


def samples(port: int, host: str = "127.0.0.1") -> Samples:
    """Every sample on /metrics, keyed by (sample name, label set)."""
    found: Samples = {}
    for family in text_string_to_metric_families(fetch(port, host=host)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))
