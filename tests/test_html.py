"""The pages' shared parts: HTML or JSON by the Accept header, escaping, the policy."""

from __future__ import annotations

import pytest

from cachewatch.web.html import content_security_policy, e, layout, table, wants_html

BROWSERS = [
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # Firefox
    "text/html",
    "text/*, application/json;q=0.5",
]
PROGRAMS = [
    None, "", "*/*", "application/json", "application/json, text/html",
    "text/html;q=0.5, application/json", "text/plain", "text/html;q=0", "garbage;;q=x",
    "text/html;q=abc",
]  # fmt: skip


@pytest.mark.parametrize("accept", BROWSERS)
def test_browsers_get_html(accept: str) -> None:
    assert wants_html(accept)


@pytest.mark.parametrize("accept", PROGRAMS)
def test_programs_get_json(accept: str | None) -> None:
    assert not wants_html(accept)


def test_everything_shown_is_escaped() -> None:
    assert e('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert e(None) == ""
    rendered = table(("Name <b>",), [[e("<script>")]])
    assert "<script>" not in rendered and "Name &lt;b&gt;" in rendered
    assert 'data-label="Name &lt;b&gt;"' in rendered
    assert table(("A",), [], empty="nothing <here>") == '<p class="empty">nothing &lt;here&gt;</p>'
    page = layout("<title>", "", links={"Grafana": 'http://g"onmouseover="x'}).decode()
    assert '"onmouseover' not in page and "&lt;title&gt;" in page


def test_a_page_without_script_may_run_none() -> None:
    assert "script-src 'none'" in content_security_policy()
    assert "script-src 'sha256-" in content_security_policy("1")
