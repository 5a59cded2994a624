"""Numbers and families from INFO-style replies (``INFO``, ``CLUSTER INFO``, the lines of
``INFO sentinel`` and ``INFO replication``): the one number parser and the one cheap family
builder that the INFO, replication, cluster and Sentinel parsers share.

Nothing here raises on odd input: a value that is not a number is skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from .. import catalog
from ..snapshot import freeze

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


Input = tuple[tuple[str, ...], "str | float", float]
"""One sample as a parser hands it in: its label values, the raw text (or a number already
made) and the scale to multiply it by."""


@dataclass(frozen=True)
class _Built:
    inputs: list[Input]
    family: Metric | None
    """None when no input was a number."""
    skipped: int
    first_number: int
    """The index of the first input that was a number: the family's place in the output."""


Row = tuple[str, Any, str, float]
"""A table entry as a plain tuple: field, spec, spec name, scale."""


@dataclass(frozen=True)
class _Flat:
    """A table as plain tuples, made once per table: its rows, and for each field the specs
    it feeds with each spec's rows (a spec may read several fields, a field feed several)."""

    table: Sequence[catalog.InfoField]
    rows: list[Row]
    specs_of_field: dict[str, list[str]]
    rows_of_spec: dict[str, list[Row]]


_FLAT: dict[int, _Flat] = {}


def _flat(table: Sequence[catalog.InfoField]) -> _Flat:
    kept = _FLAT.get(id(table))
    if kept is None or kept.table is not table:
        rows = [(i.field, i.spec, i.spec.name, i.scale) for i in table]
        specs_of_field: dict[str, list[str]] = {}
        rows_of_spec: dict[str, list[Row]] = {}
        for row in rows:
            names = specs_of_field.setdefault(row[0], [])
            if row[2] not in names:
                names.append(row[2])
            rows_of_spec.setdefault(row[2], []).append(row)
        kept = _FLAT[id(table)] = _Flat(table, rows, specs_of_field, rows_of_spec)
    return kept


@dataclass(frozen=True)
class InfoChange:
    """A reply equal to the last one but for the plain fields ``keys`` (and keyed entries:
    commands, errors, databases), ``since`` being the last reply's fields (made by
    ``info_delta.InfoParser``)."""

    since: Mapping[str, str]
    keys: frozenset[str]


Pending = tuple[catalog.MetricSpec, list[Input], list[int]]
"""A family being built: its spec, its inputs, and each input's place in the output."""


@dataclass(frozen=True)
class _TableRows:
    """What ``table`` made of one table at the start of the last poll's output: the rows by
    spec name, the fields they were made from, and the count of inputs after them."""

    table: Sequence[catalog.InfoField]
    fields: Mapping[str, str]
    rows: dict[str, Pending]
    count: int


class FamilyMemo:
    """The families one server's last poll made, by name, with the inputs they were made from.

    Between two scrapes most of a server's INFO does not change (versions, configuration,
    counters of idle subsystems, per-database and per-command figures of quiet ones). A family
    whose inputs are those of the last poll is handed out again, frozen, so that the scrape
    neither parses its numbers again nor encodes its samples again (the encoders keep a frozen
    family's text). It holds only the last poll's families, and the rows its INFO table made
    (``FamilyBuilder.table``): its size is bounded by what one reply holds. One memo per
    server; polls at once are safe (each reads the last dictionaries and replaces them whole,
    and what they hold never changes)."""

    def __init__(self) -> None:
        self.last: dict[str, _Built] = {}
        self.tables: dict[int, _TableRows] = {}
        """The rows the last poll's tables made, by id of the table (see ``table``)."""


class FamilyBuilder:
    """Families built in the order of their first sample that is a number, each counted
    once; values that are not numbers are counted in ``skipped``. With a ``memo``, families
    whose inputs did not change since the memo's last poll are the same frozen objects."""

    def __init__(self, memo: FamilyMemo | None = None) -> None:
        self._skipped = 0
        self._result: tuple[list[Metric], int] | None = None
        """The families and the values they skipped, once made (no sample comes after)."""
        self._memo = memo
        self._pending: dict[str, Pending] = {}
        self._count = 0
        self._shared: set[str] = set()
        """Pending families whose lists the memo holds too: copied before they grow."""

    def _growing(self, name: str) -> Pending:
        """The shared pending family ``name`` with lists of this builder's own, to grow."""
        self._shared.discard(name)
        spec, inputs, order = self._pending[name]
        pending = self._pending[name] = (spec, list(inputs), list(order))
        return pending

    def _record(self, spec: catalog.MetricSpec, entry: Input) -> None:
        if self._result is not None:
            raise RuntimeError("a sample after the families were made")
        pending = self._pending.get(spec.name)
        if pending is None:
            pending = self._pending[spec.name] = (spec, [], [])
        elif self._shared and spec.name in self._shared:
            pending = self._growing(spec.name)
        pending[1].append(entry)
        pending[2].append(self._count)
        self._count += 1

    def add(
        self,
        spec: catalog.MetricSpec,
        labels: Iterable[str],
        raw: str | None,
        scale: float = 1.0,
    ) -> None:
        """One sample of ``spec`` from the text ``raw`` (nothing when ``raw`` is None)."""
        if raw is not None:
            self._record(spec, (tuple(labels), raw, scale))

    def value(self, spec: catalog.MetricSpec, labels: Iterable[str], value: float) -> None:
        """One sample of ``spec`` with a number already made."""
        # A zero is kept as its spelling: 0.0 == -0.0, but they are not encoded the same.
        self._record(spec, (tuple(labels), float(value) if value else repr(float(value)), 1.0))

    def table(
        self,
        fields: Mapping[str, str],
        table: Sequence[catalog.InfoField],
        change: InfoChange | None = None,
    ) -> None:
        """Every field of ``table`` that ``fields`` has, as an unlabelled sample.

        With a memo, a table that starts the output is remembered; given ``change`` (these
        fields are those the last poll's table was made from, but for the values of
        ``change.keys``), only the changed fields' rows are made again, the others are the
        last poll's (their lists shared with the memo, so copied before a later sample joins
        them)."""
        if self._result is not None:
            raise RuntimeError("a sample after the families were made")
        memo = self._memo
        first = memo is not None and not self._pending
        if first and change is not None:
            assert memo is not None
            kept = memo.tables.get(id(table))
            if kept is not None and kept.table is table and kept.fields is change.since:
                self._table_again(memo, kept, fields, change.keys)
                return
        pending = self._pending
        count = self._count
        for field, spec, name, scale in _flat(table).rows:  # the hot loop of a scrape, kept flat
            raw = fields.get(field)
            if raw is None:
                continue
            entry = pending.get(name)
            if entry is None:
                pending[name] = (spec, [((), raw, scale)], [count])
            else:
                if self._shared and name in self._shared:
                    entry = self._growing(name)
                entry[1].append(((), raw, scale))
                entry[2].append(count)
            count += 1
        self._count = count
        if first:
            assert memo is not None
            memo.tables[id(table)] = _TableRows(table, fields, dict(pending), count)
            self._shared.update(pending)

    def _table_again(
        self, memo: FamilyMemo, kept: _TableRows, fields: Mapping[str, str], keys: frozenset[str]
    ) -> None:
        """The last poll's rows of ``kept.table``, those fed by a changed field made again
        (each from all of its fields: which of them are present did not change)."""
        pending = dict(kept.rows)
        flat = _flat(kept.table)
        for key in keys:
            for name in flat.specs_of_field.get(key, ()):
                inputs: list[Input] = [((), fields[field], scale) for field, _, _, scale in
                                       flat.rows_of_spec[name] if field in fields]  # fmt: skip
                spec, _, order = pending[name]
                pending[name] = (spec, inputs, order)
        self._pending = pending
        self._count = kept.count
        memo.tables[id(kept.table)] = _TableRows(kept.table, fields, dict(pending), kept.count)
        self._shared.update(pending)

    def skip(self, count: int = 1) -> None:
        """Count values the caller could not use."""
        self._skipped += count

    @property
    def skipped(self) -> int:
        """Values that were not numbers or that the caller skipped. Reading it makes the
        families (a number is parsed only then, and only when its input changed)."""
        return self._skipped + self._made()[1]

    def families(self) -> list[Metric]:
        """The families, in the order of their first sample that is a number."""
        return list(self._made()[0])

    def _made(self) -> tuple[list[Metric], int]:
        if self._result is not None:
            return self._result
        memo = self._memo
        last = memo.last if memo is not None else {}
        made: dict[str, _Built] = {}
        families: list[Metric] = []
        moved = False
        skipped = 0
        for name, (spec, inputs, _) in self._pending.items():
            built = last.get(name)
            if built is None or (built.inputs is not inputs and built.inputs != inputs):
                built = _build(spec, inputs, frozen=memo is not None)
            made[name] = built
            skipped += built.skipped
            if built.family is not None:
                families.append(built.family)
                moved = moved or built.first_number > 0
        if memo is not None:
            memo.last = made
        if moved:  # a family whose first sample was not a number moves down to it
            families = self._by_first_number(made)
        self._result = families, skipped
        return self._result

    def _by_first_number(self, made: dict[str, _Built]) -> list[Metric]:
        placed = []
        for name, (_, _, order) in self._pending.items():
            built = made[name]
            if built.family is not None:
                placed.append((order[built.first_number], built.family))
        placed.sort(key=lambda pair: pair[0])
        return [family for _, family in placed]


def _build(spec: catalog.MetricSpec, inputs: list[Input], *, frozen: bool) -> _Built:
    family = None
    skipped = 0
    first = 0
    for labels, raw, scale in inputs:
        value = to_number(raw) if type(raw) is str else float(raw)
        if value is None:
            skipped += 1
            continue
        if family is None:
            family = spec.family()
            first = skipped
        # What add_metric appends, without its per-call bookkeeping.
        names = dict(zip(spec.labels, labels, strict=True)) if labels else {}
        family.samples.append(Sample(spec.sample_name, names, value * scale, None, None))
    if family is not None and frozen:
        freeze(family)
    return _Built(inputs, family, skipped, first)
