"""Process and host memory (psutil), and the caches' share of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryUsage:
    """Memory of this process and host; the shares are None when a total is unknown."""

    process_rss_bytes: float
    host_total_bytes: float
    host_available_bytes: float
    in_process_cache_bytes: float
    cache_bytes: float

    @property
    def process_share(self) -> float | None:
        """Share of this process's resident memory held by its in-process caches."""
        if self.process_rss_bytes <= 0:
            return None
        return min(1.0, self.in_process_cache_bytes / self.process_rss_bytes)

    @property
    def host_share(self) -> float | None:
        """Share of the host's memory held by every watched cache (in-process and Redis)."""
        if self.host_total_bytes <= 0:
            return None
        return self.cache_bytes / self.host_total_bytes

    @property
    def host_available_ratio(self) -> float | None:
        if self.host_total_bytes <= 0:
            return None
        return self.host_available_bytes / self.host_total_bytes


_process: psutil.Process | None = None


def memory_usage(in_process_cache_bytes: float, cache_bytes: float) -> MemoryUsage | None:
    """Read the process and host memory now; None when psutil cannot (never raises)."""
    global _process
    try:
        if _process is None:
            _process = psutil.Process()
        rss = float(_process.memory_info().rss)
        host = psutil.virtual_memory()
    except (psutil.Error, OSError) as exc:
        log.debug("cannot read memory usage: %s", exc)
        return None
    return MemoryUsage(
        process_rss_bytes=rss,
        host_total_bytes=float(host.total),
        host_available_bytes=float(host.available),
        in_process_cache_bytes=in_process_cache_bytes,
        cache_bytes=cache_bytes,
    )
