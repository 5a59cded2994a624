"""The request head parser gives what ``http.client.parse_headers`` gives: the same
(name, value) pairs, the same first value by any spelling of a name, and defects exactly
where it finds some."""

from __future__ import annotations

import http.client
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewatch.web.head import Head, parse_head

names = st.one_of(
    st.sampled_from(["Host", "Accept", "accept", "ACCEPT-ENCODING", "Connection", "From", "X-A"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=8),
)
values = st.text(st.characters(min_codepoint=0x00, max_codepoint=0xFF), max_size=12)
separators = st.sampled_from([":", ": ", ":\t ", " :", ""])
endings = st.sampled_from(["\r\n", "\r\n", "\n", "\r", "\r\r\n"])
lines = st.one_of(
    st.builds(lambda n, s, v, e: n + s + v + e, names, separators, values, endings),
    st.sampled_from([" continued\r\n", "\tcontinued\r\n", "From x\r\n", ":\r\n", "no colon\r\n"]),
)
blank = st.sampled_from(["\r\n", "\n", ""])


def reference(block: bytes) -> http.client.HTTPMessage:
    return http.client.parse_headers(io.BytesIO(block))


def check(block: bytes) -> None:
    expected = reference(block)
    parsed = parse_head(block)
    assert parsed.items() == expected.items()
    assert bool(parsed.defects) == bool(expected.defects)
    for name, _ in expected.items():
        for spelling in (name, name.lower(), name.upper()):
            assert parsed.get(spelling) == expected.get(spelling)
    assert parsed.get("absent") is None and parsed.get("absent", "x") == "x"


def test_the_usual_head_takes_the_fast_path() -> None:
    block = b"Host: x\r\nAccept: */*\r\naccept: text/plain\r\nX-Empty:\r\n\r\n"
    assert isinstance(parse_head(block), Head)
    check(block)


@settings(max_examples=1000, deadline=None, database=None)
@given(st.lists(lines, max_size=6), blank)
def test_any_head_parses_as_http_client_parses_it(head: list[str], end: str) -> None:
    check(("".join(head) + end).encode("latin-1"))
