"""prometheus_client's own multiprocess files (``*.db``) in the same directory, merged by its
``MultiProcessCollector``, so that an application that already uses prometheus_client's
multiprocess mode gets its metrics and cachewatch's on one /metrics.

Two guarantees on top of prometheus_client's: a corrupt file is skipped (and counted)
instead of failing the whole scrape, and a family whose name cachewatch publishes itself is
left out (with one log line), so that no family appears twice.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .. import catalog

log = logging.getLogger(__name__)


def _family_names(spec: catalog.MetricSpec) -> set[str]:
    return {spec.name, spec.family_name}


def _merge(files: list[str]) -> list[Metric]:
    """prometheus_client's merge (untyped upstream), cumulative buckets as on the wire."""
    merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return list(merged)


OWN_NAMES = frozenset(name for spec in catalog.ALL for name in _family_names(spec))


class PrometheusClientFiles:
    """The merged families of prometheus_client's files in ``directory``."""

    def __init__(self, directory: str, on_error: Callable[[str], None]) -> None:
        self.directory = directory
        self.on_error = on_error
        """Called with the name of each file that cannot be read."""
        self._warned: set[str] = set()
        self._bad: dict[str, tuple[int, int]] = {}

    def collect(self, reserved: Iterable[str] = OWN_NAMES) -> list[Metric]:
        files = sorted(glob.glob(os.path.join(self.directory, "*.db")))
        if not files:
            return []
        try:
            merged = _merge(files)
        except Exception:  # noqa: BLE001 - find the bad file rather than fail the scrape
            merged = _merge(self._readable(files))
        taken = set(reserved)
        families = []
        for family in merged:
            if family.name in taken:
                if family.name not in self._warned:
                    self._warned.add(family.name)
                    log.warning(
                        "prometheus_client metric %s is left out: cachewatch publishes that "
                        "name itself",
                        family.name,
                    )
                continue
            taken.add(family.name)
            families.append(family)
        return families

    def _readable(self, files: list[str]) -> list[str]:
        good = []
        for path in files:
            try:
                _merge([path])
            except FileNotFoundError:
                continue  # a live gauge's file removed by mark_process_dead meanwhile
            except Exception:  # noqa: BLE001 - any damage: skip this file
                self._report(path)
                continue
            good.append(path)
        return good

    def _report(self, path: str) -> None:
        """Count a bad file once per version of it (not once per scrape)."""
        try:
            stat = os.stat(path)
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = (-1, -1)
        if self._bad.get(path) != version:
            self._bad[path] = version
            log.warning("skipping prometheus_client file %s: it cannot be read", path)
            self.on_error(path)
