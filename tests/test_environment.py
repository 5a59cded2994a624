"""Settings the library reads from the environment on its own: a bad value is logged and the
declared default used, never an exception in the application."""

from __future__ import annotations

import pytest

from cachewatch.config import Config
from cachewatch.config.environment import max_caches, tracing_record_keys

DEFAULTS = Config()


def test_max_names_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    assert max_caches({}) == DEFAULTS.max_caches
    assert max_caches({"CACHEWATCH_CACHE_MAX_NAMES": " 17 "}) == 17
    for bad in ("0", "-3", "many", "1e3"):
        caplog.clear()
        assert max_caches({"CACHEWATCH_CACHE_MAX_NAMES": bad}) == DEFAULTS.max_caches
        assert "CACHEWATCH_CACHE_MAX_NAMES" in caplog.text


def test_record_keys_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    assert tracing_record_keys({}) is DEFAULTS.tracing_record_keys is False
    assert tracing_record_keys({"CACHEWATCH_TRACING_RECORD_KEYS": "yes"}) is True
    assert tracing_record_keys({"CACHEWATCH_TRACING_RECORD_KEYS": "perhaps"}) is False
    assert "CACHEWATCH_TRACING_RECORD_KEYS" in caplog.text
