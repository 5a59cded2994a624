"""The committed configuration reference matches the setting declarations."""

from __future__ import annotations

from pathlib import Path

from cachewatch.config.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    stale = "docs/configuration.md is stale: python -m cachewatch.config.reference"
    assert committed == render(), stale
