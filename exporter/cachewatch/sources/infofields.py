"""Numbers and families from INFO-style replies (``INFO``, ``CLUSTER INFO``, the lines of
``INFO sentinel`` and ``INFO replication``): the one number parser and the one cheap family
builder that the INFO, replication, cluster and Sentinel parsers share.

Nothing here raises on odd input: a value that is not a number is skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from .. import catalog

MAX_LABEL_LENGTH = 256
_STATUS = {
    "ok": 1.0, "up": 1.0, "yes": 1.0, "true": 1.0,
    "err": 0.0, "down": 0.0, "no": 0.0, "fail": 0.0, "false": 0.0,
}  # fmt: skip


def to_number(raw: str) -> float | None:
    """A finite number from an INFO value (``ok``/``err`` style statuses as 1/0), else None."""
    if len(raw) > 64:
        return None
    try:
        value = float(raw)  # float() ignores surrounding whitespace itself
    except ValueError:
        return _STATUS.get(raw.strip().lower())
    return value if math.isfinite(value) else None


def cut_label(value: str) -> str:
    """A label value of bounded length (INFO values come from the server, not from us)."""
    return value[:MAX_LABEL_LENGTH]


def parse_pairs(text: str) -> tuple[dict[str, str], int]:
    """``ip=10.0.0.1,port=6379,...`` -> the pairs, and how many pieces were malformed."""
    pairs: dict[str, str] = {}
    bad = 0
    for piece in text.split(","):
        key, sep, value = piece.partition("=")
        if not sep or not key:
            bad += 1
            continue
        pairs[key.strip()] = value.strip()
    return pairs, bad


_PROTOTYPES: dict[str, Metric] = {}


def fresh_family(spec: catalog.MetricSpec) -> Any:
    """An empty family for ``spec``: a copy of a prototype, skipping the name checks that
    make building ~150 families on every scrape cost more than parsing INFO."""
    prototype = _PROTOTYPES.get(spec.name)
    if prototype is None:
        prototype = _PROTOTYPES[spec.name] = spec.family()
    family = object.__new__(type(prototype))
    family.__dict__.update(prototype.__dict__)
    family.samples = []
    return family


class FamilyBuilder:
    """Families built lazily, in first-use order, each counted once; values that are not
    numbers are counted in ``skipped``."""

    def __init__(self) -> None:
        self.by_name: dict[str, Any] = {}
        self.skipped = 0

    def get(self, spec: catalog.MetricSpec) -> Any:
        family = self.by_name.get(spec.name)
        if family is None:
            family = self.by_name[spec.name] = fresh_family(spec)
        return family

    def add(
        self,
        spec: catalog.MetricSpec,
        labels: Iterable[str],
        raw: str | None,
        scale: float = 1.0,
    ) -> None:
        """One sample of ``spec`` from the text ``raw`` (nothing when ``raw`` is None)."""
        if raw is None:
            return
        value = to_number(raw)
        if value is None:
            self.skipped += 1
            return
        self.value(spec, labels, value * scale)

    def value(self, spec: catalog.MetricSpec, labels: Iterable[str], value: float) -> None:
        family = self.get(spec)
        values = list(labels)
        # What add_metric appends, without its per-call bookkeeping.
        names = dict(zip(spec.labels, values, strict=True)) if values else {}
        family.samples.append(Sample(spec.sample_name, names, value, None, None))

    def table(self, fields: Mapping[str, str], table: Iterable[catalog.InfoField]) -> None:
        """Every field of ``table`` that ``fields`` has, as an unlabelled sample."""
        for entry in table:
            raw = fields.get(entry.field)
            if raw is not None:
                self.add(entry.spec, (), raw, entry.scale)

    def families(self) -> list[Metric]:
        return list(self.by_name.values())
