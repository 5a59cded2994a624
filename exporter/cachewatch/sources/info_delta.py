"""INFO parsed where it changed since the last poll of the same server.

Between two polls most of a server's INFO lines are the same (versions, configuration,
counters of idle subsystems) and the others keep their place and their key (uptime, memory,
the counters that moved). Parsing every line again cost ~100 us of a ~1 ms scrape, and
building every table row again as much. ``InfoParser`` compares the reply's lines with the
last reply's, position by position, parses only those that changed (``parse_lines``, the
parser of ``parse_info``, on those lines alone) and patches the last result with them;
``InfoChange`` names the plain fields that changed, so that ``FamilyBuilder.table`` can
rebuild only their rows.

The patch is taken only where it is exactly what a full parse would give: the last reply was
"simple" (every line that is not blank or a comment made one entry, no two the same, nothing
skipped), and every changed line keeps the key of the line it replaces and makes one entry.
Anything else (a line appearing, a key moving, a malformed value) is parsed in full.
"""

from __future__ import annotations

from typing import Any

from .infofields import InfoChange
from .redis_info import ParsedInfo, parse_info, parse_lines

__all__ = ["InfoChange", "InfoParser"]


def _entries(info: ParsedInfo) -> int:
    return len(info.fields) + len(info.commands) + len(info.errors) + len(info.keyspace)


def _simple(info: ParsedInfo, lines: list[str]) -> bool:
    """Every line that is neither blank nor a comment made one entry of its own."""
    if info.skipped:
        return False
    content = 0
    for line in lines:
        stripped = line.strip()
        if stripped and stripped[0] != "#":
            content += 1
    return content == _entries(info)


def _key(line: str) -> str:
    return line.partition(":")[0]


class InfoParser:
    """``parse_info`` for one server's successive replies; one poll at a time (the poller's)."""

    def __init__(self) -> None:
        self._last: tuple[list[str], ParsedInfo] | None = None
        """The last reply's lines and parse, when it was simple; replaced whole."""

    def parse(self, reply: Any) -> tuple[ParsedInfo, InfoChange | None]:
        """The reply parsed, and how it differs from the last one (None: parsed in full)."""
        if not isinstance(reply, (str, bytes)):  # a dict (redis-py's): no lines to compare
            self._last = None
            return parse_info(reply), None
        text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
        lines = text.split("\n")
        last = self._last
        if last is not None and len(lines) == len(last[0]):
            patched = _patch(last[0], last[1], lines)
            if patched is not None:
                info, keys = patched
                self._last = (lines, info)
                return info, InfoChange(last[1].fields, keys)
        info = parse_lines(lines)
        self._last = (lines, info) if _simple(info, lines) else None
        return info, None


def _patch(
    old_lines: list[str], old: ParsedInfo, lines: list[str]
) -> tuple[ParsedInfo, frozenset[str]] | None:
    """The parse of ``lines`` as ``old``'s with the changed lines' entries replaced, and the
    plain fields those lines set; None when that would not be what a full parse gives."""
    pairs = enumerate(zip(lines, old_lines, strict=True))
    changed = [i for i, (new, before) in pairs if new != before]
    for i in changed:
        if _key(lines[i]) != _key(old_lines[i]):
            return None
    part = parse_lines([lines[i] for i in changed])
    if part.skipped or _entries(part) != len(changed):
        return None
    info = ParsedInfo(
        fields={**old.fields, **part.fields},
        keyspace={**old.keyspace, **part.keyspace},
        commands={**old.commands, **part.commands},
        errors={**old.errors, **part.errors},
    )
    return info, frozenset(part.fields)
