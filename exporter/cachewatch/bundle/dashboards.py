"""Grafana dashboards (placeholder until built)."""

from __future__ import annotations

from typing import Any

from ..config import Config


def all_dashboards(config: Config) -> dict[str, Any]:
    del config
    return {}
