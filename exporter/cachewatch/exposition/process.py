"""prometheus_client's process metrics (``process_*``), the same families read through
descriptors kept open.

prometheus_client's ``ProcessCollector`` opens /proc/self/stat and /proc/self/limits on
every scrape: 77 us of a scrape on the machine the benchmarks ran on, ~45 us of it the two
opens. This is its ``collect`` with the files read by ``procfs`` (kept open, reread with
pread); everything else (names, help, units, ticks, page size, boot time) is its own, and
``tests/test_process.py`` checks the families against it."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from .. import procfs

_STAT = "/proc/self/stat"
_LIMITS = "/proc/self/limits"
_FDS = "/proc/self/fd"


class KeptProcessCollector(ProcessCollector):
    """This process's ``process_*`` families, as ``ProcessCollector`` makes them."""

    def collect(self) -> Iterable[Metric]:
        if not self._btime:
            return []
        prefix = self._prefix
        result: list[Metric] = []
        try:
            parts = procfs.read(_STAT).split(b")")[-1].split()
            ticks = self._ticks
            result += [
                GaugeMetricFamily(prefix + "virtual_memory_bytes",
                                  "Virtual memory size in bytes.", value=float(parts[20])),
                GaugeMetricFamily(prefix + "resident_memory_bytes",
                                  "Resident memory size in bytes.",
                                  value=float(parts[21]) * self._pagesize),
                GaugeMetricFamily(prefix + "start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  value=float(parts[19]) / ticks + self._btime),
                CounterMetricFamily(prefix + "cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    value=float(parts[11]) / ticks + float(parts[12]) / ticks),
            ]  # fmt: skip
        except OSError:
            pass
        try:
            max_fds = None
            for line in procfs.read(_LIMITS).splitlines():
                if line.startswith(b"Max open file"):
                    max_fds = GaugeMetricFamily(prefix + "max_fds",
                                                "Maximum number of open file descriptors.",
                                                value=float(line.split()[3]))  # fmt: skip
                    break
            open_fds = GaugeMetricFamily(prefix + "open_fds", "Number of open file descriptors.",
                                         len(os.listdir(_FDS)))  # fmt: skip
            result.append(open_fds)
            if max_fds is not None:
                result.append(max_fds)
        except OSError:
            pass
        return result
