"""The family builder of INFO-style replies: with a memo, unchanged families come back as the
same frozen objects, and nothing else about the families changes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewatch import catalog
from cachewatch.snapshot import renderings
from cachewatch.sources.infofields import FamilyBuilder, FamilyMemo

SPECS = [catalog.REDIS_DB_KEYS, catalog.REDIS_COMMANDS, catalog.REDIS_ERRORS]
RAWS = st.sampled_from(["0", "1", "-0.0", "2.5", "x", "nan", "", "7"])
CALL = st.tuples(st.integers(0, 2), st.sampled_from(["a", "b", "c"]), RAWS | st.floats(-3, 3))
TABLE = catalog.REDIS_CLUSTER_INFO_FIELDS[:6]
FIELDS = st.dictionaries(st.sampled_from([entry.field for entry in TABLE]), RAWS)


def _fill(out: FamilyBuilder, fields: dict[str, str], calls: list[tuple[int, str, Any]]) -> None:
    out.table(fields, TABLE)
    for which, label, raw in calls:
        if isinstance(raw, str):
            out.add(SPECS[which], [label], raw, 0.5)
        else:
            out.value(SPECS[which], [label], raw)


def _seen(families: list[Any]) -> list[tuple[str, list[tuple[str, dict[str, str], str]]]]:
    return [(f.name, [(s.name, s.labels, repr(s.value)) for s in f.samples]) for f in families]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(FIELDS, st.lists(CALL, max_size=8)), min_size=1, max_size=4))
def test_a_memo_changes_nothing_but_the_objects(polls: list[Any]) -> None:
    """Poll after poll, the families and the count of skipped values with a memo are those
    made without one (values compared by spelling: 0.0 and -0.0 differ)."""
    memo = FamilyMemo()
    for fields, calls in polls:
        plain, memoized = FamilyBuilder(), FamilyBuilder(memo)
        _fill(plain, fields, calls)
        _fill(memoized, fields, calls)
        assert _seen(memoized.families()) == _seen(plain.families())
        assert memoized.skipped == plain.skipped


def test_unchanged_families_are_the_same_frozen_objects() -> None:
    memo = FamilyMemo()

    def poll(keys_in_db0: str) -> dict[str, Any]:
        out = FamilyBuilder(memo)
        out.add(catalog.REDIS_DB_KEYS, ["db0"], keys_in_db0)
        out.add(catalog.REDIS_COMMANDS, ["get"], "12")
        return {family.name: family for family in out.families()}

    first, second, third = poll("3"), poll("3"), poll("4")
    assert second["redis_commands"] is first["redis_commands"]
    assert second["redis_db_keys"] is first["redis_db_keys"]
    assert third["redis_db_keys"] is not first["redis_db_keys"]
    assert third["redis_db_keys"].samples[0].value == 4
    assert third["redis_commands"] is first["redis_commands"]
    assert all(renderings(family) is not None for family in third.values())
    assert renderings(_one_plain()) is None  # without a memo, nothing is kept


def _one_plain() -> Any:
    out = FamilyBuilder()
    out.add(catalog.REDIS_DB_KEYS, ["db0"], "1")
    return out.families()[0]


def test_a_family_takes_the_place_of_its_first_number() -> None:
    out = FamilyBuilder()
    out.add(catalog.REDIS_DB_KEYS, ["db0"], "not a number")
    out.add(catalog.REDIS_COMMANDS, ["get"], "1")
    out.add(catalog.REDIS_DB_KEYS, ["db1"], "2")
    out.skip()
    assert [family.name for family in out.families()] == ["redis_commands", "redis_db_keys"]
    assert out.skipped == 2


def test_no_sample_after_the_families_are_made() -> None:
    out = FamilyBuilder()
    out.add(catalog.REDIS_DB_KEYS, ["db0"], "1")
    assert out.skipped == 0
    with pytest.raises(RuntimeError):
        out.add(catalog.REDIS_DB_KEYS, ["db1"], "1")


def test_a_zero_that_changes_sign_is_made_again() -> None:
    """0.0 == -0.0, but the exposition spells them apart: the memo must not take one for the
    other."""
    memo = FamilyMemo()
    spelt = []
    for zero in (0.0, -0.0, -0.0):
        out = FamilyBuilder(memo)
        out.value(catalog.REDIS_START_TIME, [], zero)
        spelt.append(repr(out.families()[0].samples[0].value))
    assert spelt == ["0.0", "-0.0", "-0.0"]


def test_a_table_field_given_a_second_sample_leaves_the_memo_as_it_was() -> None:
    """A table field that stood still reuses the memo's inputs; a second sample of the same
    family must not write into them."""
    memo = FamilyMemo()
    spec = TABLE[0].spec
    field = TABLE[0].field
    seen = []
    for extra in (None, "2", None, "3"):
        plain, memoized = FamilyBuilder(), FamilyBuilder(memo)
        for out in (plain, memoized):
            out.table({field: "1"}, TABLE)
            if extra is not None:
                out.add(spec, [], extra)
        assert _seen(memoized.families()) == _seen(plain.families())
        seen.append(len(memoized.families()[0].samples))
    assert seen == [1, 2, 1, 2]
