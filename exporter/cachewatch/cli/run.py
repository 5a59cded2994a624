"""``cachewatch serve`` and ``cachewatch demo``: logging, the exporter, the lifecycle."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Config
from ..exporter import Loader, demo_exporter, serve_exporter
from .errors import UserFacingError
from .lifecycle import ListenError, run_until_stopped
from .logs import setup_logging

if TYPE_CHECKING:
    from .story import DemoStory

log = logging.getLogger(__name__)


def run_demo(config: Config, reload: Loader | None = None) -> int:
    from ..demo import DemoRunner  # the demo's modules: not loaded by serve
    from .story import DemoStory

    setup_logging(config.log_level, config.log_format)
    exporter, workload = demo_exporter(config, reload)
    assert exporter.analysis is not None  # every mode attaches it
    story = DemoStory(workload, exporter.analysis)
    runner = DemoRunner(workload)
    exporter.on_close(runner.stop)
    runner.start()
    try:
        return run_until_stopped(
            exporter,
            config.web_listen_address,
            duration=config.duration,
            status=_opening_then(story),
            epilogue=story.recap,
        )
    except ListenError as exc:
        exporter.close()
        raise UserFacingError(str(exc)) from None


def _opening_then(story: DemoStory) -> Callable[[], list[str]]:
    """The story's lines, after its opening lines the first time."""
    opening = story.opening()

    def lines() -> list[str]:
        shown = opening + story.lines()
        opening.clear()
        return shown

    return lines


def run_serve(config: Config, reload: Loader | None = None) -> int:
    """The standalone exporter: one Redis server (stats and logical caches) plus this process;
    ``reload`` loads the configuration again on SIGHUP and ``POST /-/reload``."""
    setup_logging(config.log_level, config.log_format)
    exporter = serve_exporter(config, reload)
    # Startup objects live forever: keep them out of the collector's full passes, which would
    # otherwise walk them every few hundred scrapes (a latency spike each time).
    gc.freeze()
    try:
        return run_until_stopped(exporter, config.web_listen_address)
    except ListenError as exc:
        exporter.close()
        raise UserFacingError(str(exc)) from None
