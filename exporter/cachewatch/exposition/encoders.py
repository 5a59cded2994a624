"""The Prometheus text and OpenMetrics encoders: the same bytes as prometheus_client's, a
few times quicker.

prometheus_client escapes every metric name character by character on every sample (its
OpenMetrics encoder takes ~17 us a sample), which made a scrape of a Redis exporter slower
than the Go redis_exporter's. Our names and label names are valid Prometheus names (checked
once and cached), so nothing needs escaping but label values and help. Anything unusual
(invalid names, native histograms, other escaping schemes) falls back to prometheus_client's
encoder over the already collected families, so nothing is collected twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from prometheus_client import exposition as text_exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _float_to_go_string

from ..snapshot import RENDERINGS

_go_string = cast(Callable[[float], str], _float_to_go_string)


def floatToGoString(value: float) -> str:
    """prometheus_client's spelling of a value, with a fast path for the common case."""
    text = repr(value) if type(value) is float else repr(float(value))
    if text[-1] in "nf" or (value > 0 and text.find(".") > 6):  # nan, inf, big: Go's way
        return _go_string(value)
    return text


_compose_exemplar = cast(Callable[..., str], om_exposition._compose_exemplar_string)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_valid_names: dict[str, bool] = {}
_valid_labels: dict[str, bool] = {}
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
               "unknown": "untyped"}  # fmt: skip
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")


class Unsupported(Exception):
    """Something the fast path does not render; prometheus_client does it instead."""


def _check_name(name: str) -> None:
    valid = _valid_names.get(name)
    if valid is None:
        valid = _valid_names[name] = bool(_METRIC_NAME.fullmatch(name))
        if len(_valid_names) > 100_000:
            _valid_names.clear()
    if not valid:
        raise Unsupported(name)


_label_strings: dict[tuple[tuple[str, str], ...], str] = {}
_om_headers: dict[tuple[str, str, str, str], str] = {}


def _labels(labels: dict[str, str]) -> str:
    """``{a="1",b="2"}``, cached: the same label sets come back on every scrape."""
    if not labels:
        return ""
    key = tuple(labels.items())
    text = _label_strings.get(key)
    if text is None:
        text = _render_labels(labels)
        if len(_label_strings) > 100_000:
            _label_strings.clear()
        _label_strings[key] = text
    return text


def _render_labels(labels: dict[str, str]) -> str:
    parts = []
    for key, value in sorted(labels.items()):
        valid = _valid_labels.get(key)
        if valid is None:
            valid = _valid_labels[key] = bool(_LABEL_NAME.fullmatch(key))
            if len(_valid_labels) > 100_000:
                _valid_labels.clear()
        if not valid:
            raise Unsupported(key)
        if "\\" in value or "\n" in value or '"' in value:
            value = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        parts.append(f'{key}="{value}"')
    return "{" + ",".join(parts) + "}"


def _text_doc(documentation: str) -> str:
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


def _text_header(name: str, mtype: str, documentation: str) -> str:
    """``# HELP`` and ``# TYPE`` of a family, cached: the same families come every scrape."""
    key = (name, mtype, documentation)
    header = _text_headers.get(key)
    if header is None:
        if mtype == "counter":
            name += "_total"
        elif mtype == "info":
            name += "_info"
        mtype = _TEXT_TYPES.get(mtype, mtype)
        _check_name(name)
        header = f"# HELP {name} {_text_doc(documentation)}\n# TYPE {name} {mtype}\n"
        if len(_text_headers) > 10_000:
            _text_headers.clear()
        _text_headers[key] = header
    return header


_text_headers: dict[tuple[str, str, str], str] = {}


def render_text(families: Sequence[Metric]) -> bytes:
    """Prometheus text format 0.0.4, byte for byte as ``prometheus_client.generate_latest``,
    the loop over samples written out as in ``render_openmetrics``."""
    out: list[str] = []
    append = out.append
    prefixes = _prefixes
    spellings = _spellings
    go_string = _go_string
    for metric in families:
        kept = metric.__dict__.get(RENDERINGS)  # a frozen family: its text, once made
        if kept is not None:
            text = kept.get("text")
            if text is not None:
                append(text)
                continue
            start = len(out)
        append(_text_header(metric.name, metric.type, metric.documentation))
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            name, labels, value, timestamp, _, native = sample
            if native is not None:
                raise Unsupported("native histogram")
            prefix = prefixes.get((name, *labels.items())) or _prefix(name, labels)
            text = spellings.get(value) if value else None
            if text is None:  # floatToGoString, inline
                text = repr(value) if type(value) is float else repr(float(value))
                if text[-1] in "nf" or (value > 0 and text.find(".") > 6):
                    text = go_string(value)
                elif value:
                    _remember(value, text)
            line = prefix + text
            if timestamp is not None:
                line += f" {int(float(timestamp) * 1000):d}"
            suffix = None
            if name.endswith(_OM_SUFFIXES):
                suffix = name[len(metric.name) :]
                if suffix not in _OM_SUFFIXES or not name.startswith(metric.name):
                    suffix = None
            if suffix is None:
                append(line + "\n")
            else:
                extra.setdefault(suffix, []).append(line + "\n")
        for suffix, lines in sorted(extra.items()):
            doc = _text_doc(metric.documentation)
            out.append(f"# HELP {metric.name}{suffix} {doc}\n# TYPE {metric.name}{suffix} gauge\n")
            out.extend(lines)
        if kept is not None:
            kept["text"] = "".join(out[start:])
    return "".join(out).encode("utf-8")


def _om_header(metric: Metric) -> str:
    name = metric.name
    _check_name(name)
    doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    header = f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n"
    if metric.unit:
        header += f"# UNIT {name} {metric.unit}\n"
    return header


def _prefix(name: str, labels: dict[str, str]) -> str:
    """``name{labels} ``: what a sample line starts with, cached like ``_labels``."""
    key = (name, *labels.items())
    text = _prefixes.get(key)
    if text is None:
        _check_name(name)
        text = name + _labels(labels) + " "
        if len(_prefixes) > 100_000:
            _prefixes.clear()
        _prefixes[key] = text
    return text


_prefixes: dict[tuple[Any, ...], str] = {}
_spellings: dict[float, str] = {}
"""Values already spelt: most of a scrape's values were in the one before (gauges that do not
move, counters that did not count). Numbers that are equal spell the same, but for zeros
(0.0 and -0.0), which are never kept, and NaN and infinities (spelt by Go's rules, not kept)."""


def _remember(value: float, text: str) -> None:
    if len(_spellings) > 20_000:
        _spellings.clear()
    _spellings[value] = text


def render_openmetrics(families: Sequence[Metric]) -> bytes:
    """OpenMetrics 1.0.0, byte for byte as prometheus_client's OpenMetrics encoder.

    The loop over samples is written out (a sample's prefix from one cache, the value's
    spelling inline): it was ~1 ms of a 300-sample scrape as calls to small functions."""
    out: list[str] = []
    append = out.append
    headers = _om_headers
    prefixes = _prefixes
    spellings = _spellings
    go_string = _go_string
    for metric in families:
        kept = metric.__dict__.get(RENDERINGS)  # a frozen family: its text, once made
        if kept is not None:
            text = kept.get("openmetrics")
            if text is not None:
                append(text)
                continue
            start = len(out)
        key = (metric.name, metric.type, metric.unit, metric.documentation)
        header = headers.get(key)
        if header is None:
            header = _om_header(metric)
            if len(headers) > 10_000:
                headers.clear()
            headers[key] = header
        append(header)
        for sample in metric.samples:
            name, labels, value, timestamp, exemplar, native = sample
            if native is not None:
                raise Unsupported("native histogram")
            prefix = prefixes.get((name, *labels.items())) or _prefix(name, labels)
            if value is None:
                text = ""
            else:
                text = spellings.get(value) if value else None
                if text is None:  # floatToGoString, inline
                    text = repr(value) if type(value) is float else repr(float(value))
                    if text[-1] in "nf" or (value > 0 and text.find(".") > 6):
                        text = go_string(value)
                    elif value:
                        _remember(value, text)
            if timestamp is None and not exemplar:
                append(f"{prefix}{text}\n")
                continue
            line = prefix + text
            if timestamp is not None:
                line += f" {timestamp}"
            if exemplar:
                line += _compose_exemplar(metric, sample, exemplar)
            append(line + "\n")
        if kept is not None:
            kept["openmetrics"] = "".join(out[start:])
    append("# EOF\n")
    return "".join(out).encode("utf-8")


class _Replay(Collector):
    """Families already collected, for prometheus_client's encoders."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def encode(families: Sequence[Metric], accept: str) -> tuple[bytes, str]:
    """(body, content type) of ``families`` in the format the ``Accept`` header asks for, as
    prometheus_client negotiates it: fast where we can, prometheus_client's own otherwise."""
    encoder, content_type = text_exposition.choose_encoder(accept)
    fast: Callable[[Sequence[Metric]], bytes] | None = None
    if encoder is text_exposition.generate_latest:
        fast = render_text
    elif _plain_openmetrics(encoder):
        fast = render_openmetrics
    try:
        if fast is None:
            raise Unsupported(content_type)
        return fast(families), content_type
    except Unsupported:
        return encoder(_Replay(families)), content_type


def _plain_openmetrics(encoder: Any) -> bool:
    """The encoder is OpenMetrics 1.0.0 with underscore escaping (what Prometheus asks for)."""
    keywords = getattr(encoder, "keywords", {})
    return (
        getattr(encoder, "func", None) is om_exposition.generate_latest
        and keywords.get("escaping", om_exposition.UNDERSCORES) == om_exposition.UNDERSCORES
        and keywords.get("version", "1.0.0") == "1.0.0"
    )
