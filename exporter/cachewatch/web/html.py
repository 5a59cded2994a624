"""What every page of the exporter shares: the layout, the style sheet, the navigation, the
Content-Security-Policy, and the choice between HTML and JSON.

Pages load nothing from outside the exporter: the style and the one script are inline, and
the Content-Security-Policy names them by their SHA-256 hashes, so a browser runs nothing
else (no other script, style, font, image or frame; fetches to this origin only). No
template engine: a handful of small pages, each a module that turns the JSON of its route
into escaped HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from .._version import __version__

Page = tuple[str, str]
"""(title, body HTML) of a page, without the layout."""
PageRenderer = Callable[[Any], Page]
"""Renders a route's JSON payload as a page."""

NAVIGATION = (
    ("./", "Status"), ("report", "Report"), ("alerts", "Alerts"), ("health", "Health"),
    ("metrics", "Metrics"),
)  # fmt: skip
"""Relative links, so the pages also work where an application mounts the exporter."""

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2127;--muted:#5f6b7a;--line:#d8dde3;
--card:#f6f8fa;--ok:#1a7f37;--warning:#9a6700;--critical:#cf222e;--pending:#6e7781;
--accent:#0969da;--spark:#0969da;--mem:#8250df}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;
--line:#30363d;--card:#161b22;--ok:#3fb950;--warning:#d29922;--critical:#f85149;
--pending:#8d96a0;--accent:#4493f8;--spark:#4493f8;--mem:#a371f7}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:1240px;margin:0 auto;padding:0 16px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 24px;padding-top:14px;
border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 8px}h1 small{color:var(--muted);font-weight:400;font-size:13px}
h2{font-size:16px;margin:22px 0 8px}
nav{display:flex;flex-wrap:wrap;gap:2px 14px;margin-bottom:8px}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
nav .external::before{content:"\\2197\\00a0"}
a{color:var(--accent)}
footer{color:var(--muted);font-size:13px;padding-top:16px;padding-bottom:24px}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:14px 0 0}
.pill{border:1px solid var(--line);border-radius:999px;padding:2px 12px;background:var(--card)}
.pill.firing,.pill.critical,.pill.down,.pill.unhealthy{border-color:var(--critical);
color:var(--critical)}
.pill.pending,.pill.warning{border-color:var(--warning);color:var(--warning)}
.pill.ok,.pill.healthy,.pill.up{border-color:var(--ok);color:var(--ok)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);
font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.state{font-weight:600;white-space:nowrap}
.state.ok,.state.up,.state.true{color:var(--ok)}
.state.warning,.state.pending{color:var(--warning)}
.state.critical,.state.firing,.state.down,.state.false{color:var(--critical)}
.state.resolved,.state.inactive{color:var(--muted)}
.muted{color:var(--muted)}.empty{color:var(--muted);padding:8px 0}
.evidence{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
.metric{display:flex;align-items:center;justify-content:space-between;gap:10px}
.when{white-space:nowrap}
svg.spark{width:110px;height:26px;flex:none}
svg.spark polyline{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke}
svg.spark.ratio polyline{stroke:var(--spark)}svg.spark.memory polyline{stroke:var(--mem)}
svg.spark line{stroke:var(--warning);stroke-width:1;stroke-dasharray:3 3;
vector-effect:non-scaling-stroke}
svg.spark rect{fill:var(--card)}
.card{border:1px solid var(--line);border-radius:8px;padding:4px 14px 12px;margin:14px 0;
background:var(--card)}
.card h2{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:8px 0}
dt{color:var(--muted)}dd{margin:0;font-variant-numeric:tabular-nums}
ul.advice{margin:6px 0;padding-left:20px}
body.stale #updated{color:var(--critical);font-weight:600}
@media (max-width:720px){
header,main,footer{padding:0 10px}
table.cards,table.cards tbody{display:block;width:100%}
table.cards thead{display:none}
table.cards tr{display:block;border:1px solid var(--line);border-radius:8px;margin:10px 0;
padding:4px 0;background:var(--card)}
table.cards td{display:flex;flex-wrap:wrap;justify-content:space-between;gap:2px 12px;border:0;
padding:3px 12px;text-align:right;white-space:normal;overflow-wrap:anywhere}
table.cards td::before{content:attr(data-label);color:var(--muted);text-align:left}
table.cards td:first-child{font-weight:600}
.metric{justify-content:flex-end;flex-wrap:wrap}
svg.spark{width:90px}
dl{grid-template-columns:1fr}dt{margin-top:4px}
}
"""


def _source_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(script: str | None = None) -> str:
    """Only this page's own inline style (and script), fetches to this origin only."""
    scripts = _source_hash(script) if script is not None else "'none'"
    return (
        f"default-src 'none'; style-src {_source_hash(STYLE)}; script-src {scripts}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def page_headers(script: str | None = None) -> list[tuple[str, str]]:
    return [
        ("Content-Security-Policy", content_security_policy(script)),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]


def e(value: Any) -> str:
    """Escaped text of any value (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def state(value: Any) -> str:
    """A state word (ok, warning, firing, up ...) with the class that colours it."""
    word = e(value)
    return f'<span class="state {word.lower()}">{word}</span>'


def pill(text: str, kind: str) -> str:
    return f'<span class="pill {e(kind)}">{e(text)}</span>'


def ago(timestamp: float | None, now: float | None = None) -> str:
    """``12s ago``, with the UTC time as a tooltip."""
    if timestamp is None:
        return "never"
    now = time.time() if now is None else now
    seconds = max(0.0, now - timestamp)
    shown = f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    return f'<span class="when" title="{stamp}">{shown}</span>'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Collection[str] = (),
    empty: str = "none",
    cards: bool = True,
) -> str:
    """A table of already escaped cells (``numeric`` columns right-aligned), or ``empty``
    when there is no row. At phone width a ``cards`` table shows each row as a card, every
    cell labelled with its header."""
    found = list(rows)
    if not found:
        return f'<p class="empty">{e(empty)}</p>'
    kinds = [' class="num"' if name in numeric else "" for name in headers]
    head = "".join(f"<th{kind}>{e(name)}</th>" for name, kind in zip(headers, kinds, strict=True))
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{e(name)}"{kind}>{cell}</td>'
            for name, kind, cell in zip(headers, kinds, row, strict=True)
        )
        + "</tr>"
        for row in found
    )
    kind = ' class="cards"' if cards else ""
    return (
        f'<div class="scroll"><table{kind}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def definitions(pairs: Iterable[tuple[str, str]]) -> str:
    """A list of (term, already escaped value)."""
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def layout(
    title: str,
    body: str,
    *,
    links: Mapping[str, str] | None = None,
    script: str | None = None,
    footer: str = "",
) -> bytes:
    """A whole page: the navigation (the exporter's pages, then the configured tools)."""
    nav = [f'<a href="{e(href)}">{e(text)}</a>' for href, text in NAVIGATION]
    nav += [
        f'<a class="external" href="{e(url)}" rel="noreferrer noopener">{e(name)}</a>'
        for name, url in (links or {}).items()
    ]
    tail = f"<script>{script}</script>" if script is not None else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)}</title><link rel="icon" href="data:,"><style>{STYLE}</style>'
        f"</head><body><header><h1>cachewatch <small>{e(__version__)}</small></h1>"
        f'<nav>{"".join(nav)}</nav></header><main id="main">{body}</main>'
        f"<footer>{footer}</footer>{tail}</body></html>\n"
    ).encode()


def wants_html(accept: str | None) -> bool:
    """True when the client prefers HTML to JSON: a browser (``text/html`` before
    ``*/*;q=0.8``), not curl, fetch() or Prometheus (``*/*``, or JSON named first)."""
    if not accept:
        return False
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))

    def preference(kind: str) -> float:
        major = kind.split("/")[0]
        for pattern in (kind, f"{major}/*", "*/*"):  # the most specific range decides
            found = [q for media, q in ranges if media == pattern]
            if found:
                return max(found)
        return 0.0

    return preference("text/html") > preference("application/json")
