"""Property-based tests of configuration input: whatever a user types into a flag, an
environment variable or the YAML file, cachewatch either accepts it or answers with one line
naming the setting and exit status 2 — never a traceback, never another exit status."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cachewatch.cli import main
from cachewatch.config import Config, ConfigError, Setting, load_config, settings_for

FILE_SETTINGS = {"config.file", "web.config.file"}
SETTINGS: dict[str, tuple[str, Setting]] = {
    meta.key: (name, meta)
    for name, meta, _ in settings_for("demo")
    if meta.key not in FILE_SETTINGS
}
SAFE = ["--duration", "1ms", "--web.listen-address", "127.0.0.1:0"]
"""Appended to every in-process run, so that a wrongly accepted value ends the demo at once."""


def safe_for(key: str) -> list[str]:
    """SAFE without the flag under test (a later flag would override the value tested)."""
    flags = list(zip(SAFE[::2], SAFE[1::2], strict=True))
    return [part for flag, value in flags if flag != f"--{key}" for part in (flag, value)]


text_values = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40
)
quick = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str


def run(args: list[str], environ: dict[str, str] | None = None) -> Outcome:
    """``cachewatch ARGS`` in this process, with ``environ`` added to the environment."""
    err = io.StringIO()
    with (
        mock.patch.dict(os.environ, environ or {}),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return Outcome(code, err.getvalue())


def supply(key: str, raw: str, origin: str, workdir: Path) -> tuple[list[str], dict[str, str], str]:
    """(arguments, environment, how the error must name the setting) for one origin."""
    _, meta = SETTINGS[key]
    if origin == "flag":
        return [f"{meta.flag}={raw}"], {}, meta.flag
    if origin == "env":
        return [], {meta.env: raw}, meta.env
    document: dict[str, object] = {}
    node = document
    for part in meta.yaml_path[:-1]:
        node = node.setdefault(part, {})  # type: ignore[assignment]
    node[meta.yaml_path[-1]] = raw
    path = workdir / "cachewatch.yml"
    path.write_text(yaml.safe_dump(document))
    return ["--config.file", str(path)], {}, ".".join(meta.yaml_path)


def assert_one_line_naming(outcome: Outcome, *names: str) -> None:
    assert outcome.code == 2, outcome
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert any(name in lines[0] for name in names), (names, lines[0])


def load(args: list[str], environ: dict[str, str]) -> Config:
    """The configuration these arguments give, straight from ``load_config``."""
    flags: dict[str, object] = {}
    if "--config.file" in args:
        flags["config_file"] = args[args.index("--config.file") + 1]
    for arg in args:
        flag, eq, value = arg.partition("=")
        if eq:
            flags[next(n for n, m in SETTINGS.values() if m.flag == flag)] = value
    return load_config("demo", flags, environ)


@quick
@given(
    key=st.sampled_from(sorted(SETTINGS)),
    raw=text_values,
    origin=st.sampled_from(["flag", "env", "yaml"]),
)
@example(key="sample-interval", raw="-5s", origin="flag")
@example(key="alerts.memory-warning-mb", raw="1e999", origin="env")
@example(key="web.listen-address", raw="[::1]:99999", origin="yaml")
@example(key="cache.max-names", raw="0", origin="flag")
def test_any_value_of_any_setting_is_accepted_or_refused_in_one_line(
    key: str, raw: str, origin: str
) -> None:
    # An empty or blank variable means "not set" (Setting.environ_value): nothing to check.
    assume(origin != "env" or raw.strip() != "")
    with tempfile.TemporaryDirectory() as tmp:
        args, environ, name = supply(key, raw, origin, Path(tmp))
        try:
            config = load(args, environ)
        except ConfigError:
            outcome = run(["demo", *args, *safe_for(key)], environ)
            assert_one_line_naming(outcome, name, key)
        else:
            field_name, _ = SETTINGS[key]
            assert getattr(config, field_name) is not None


# --- durations ----------------------------------------------------------------------------------
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
components = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=4
)


@quick
@given(parts=components, origin=st.sampled_from(["flag", "env", "yaml"]))
def test_prometheus_durations_parse_to_their_sum(parts: list[tuple[int, str]], origin: str) -> None:
    raw = "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * UNITS[unit] for n, unit in parts)
    with tempfile.TemporaryDirectory() as tmp:
        args, environ, _ = supply("alerts.for", raw, origin, Path(tmp))
        config = load(args, environ)
    assert math.isclose(config.alert_for_seconds, expected, rel_tol=1e-9, abs_tol=1e-9)


bad_durations = st.one_of(
    components.map(lambda ps: "-" + "".join(f"{n}{u}" for n, u in ps)),  # negative
    st.builds(
        lambda ps, junk: "".join(f"{n}{u}" for n, u in ps) + junk,  # trailing junk
        components,
        st.sampled_from(["x", "sec", " minutes", "1", ".", "M", "H", "s-", "ss", "µs"]),
    ),
    st.sampled_from(["", " ", "inf", "nan", "-inf", "1e999", "s", "ms", "1.5.5s", "½h"]),
    st.integers(1, 10**6).map(lambda n: f"{n}min"),
)


@quick
@given(raw=bad_durations, origin=st.sampled_from(["flag", "env", "yaml"]))
def test_invalid_durations_are_refused_in_one_line(raw: str, origin: str) -> None:
    if origin == "env" and not raw.strip():
        raw = "-"
    with tempfile.TemporaryDirectory() as tmp:
        args, environ, name = supply("alerts.for", raw, origin, Path(tmp))
        assert_one_line_naming(run(["demo", *args, *SAFE], environ), name)


@quick
@given(zero=st.sampled_from(["0", "0s", "0ms", "0h0m", "0.0", " 0 "]))
def test_intervals_that_must_be_positive_refuse_zero(zero: str) -> None:
    assert_one_line_naming(run(["demo", f"--sample-interval={zero}", *SAFE]), "--sample-interval")


# --- thresholds ---------------------------------------------------------------------------------
ratios = st.floats(0, 1, allow_nan=False)


@quick
@given(warning=ratios, critical=ratios)
def test_hit_ratio_thresholds_must_be_ordered(warning: float, critical: float) -> None:
    environ = {
        "CACHE_HIT_RATIO_WARNING_THRESHOLD": repr(warning),
        "CACHE_HIT_RATIO_CRITICAL_THRESHOLD": repr(critical),
    }
    if critical > warning:
        outcome = run(["demo", *SAFE], environ)
        assert_one_line_naming(outcome, "alerts.hit-ratio-critical")
        assert "alerts.hit-ratio-warning" in outcome.stderr
    else:
        config = load_config("demo", {}, environ)
        assert (config.hit_ratio_warning, config.hit_ratio_critical) == (warning, critical)


@quick
@given(warning=st.floats(0, 1e6, allow_nan=False), critical=st.floats(0, 1e6, allow_nan=False))
def test_memory_thresholds_must_be_ordered(warning: float, critical: float) -> None:
    args = [f"--alerts.memory-warning-mb={warning!r}", f"--alerts.memory-critical-mb={critical!r}"]
    if critical < warning:
        assert_one_line_naming(run(["demo", *args, *SAFE]), "alerts.memory-critical-mb")
    else:
        config = load(args, {})
        assert (config.memory_warning_mb, config.memory_critical_mb) == (warning, critical)


@quick
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda v: not (0 <= v <= 1) or math.isnan(v)
        ),
        st.sampled_from(["80%", "0,5", "half", "", "1/2"]),
    ),
    key=st.sampled_from(
        [
            "alerts.hit-ratio-warning",
            "alerts.memory-near-limit-ratio",
            "alerts.error-ratio-critical",
        ]
    ),
)
def test_ratios_outside_zero_to_one_are_refused(value: float | str, key: str) -> None:
    raw = value if isinstance(value, str) else repr(value)
    assert_one_line_naming(run(["demo", f"--{key}={raw}", *SAFE]), f"--{key}")


@quick
@given(value=st.one_of(st.integers(max_value=0), st.sampled_from(["1.5", "ten", "2**8", ""])))
def test_the_cache_name_limit_must_be_a_positive_integer(value: int | str) -> None:
    outcome = run(["demo", f"--cache.max-names={value}", *SAFE])
    assert_one_line_naming(outcome, "--cache.max-names")


# --- a few real processes -----------------------------------------------------------------------
@settings(max_examples=4, deadline=None, database=None)
@given(
    case=st.sampled_from(
        [
            (["--sample-interval", "soon"], {}, "--sample-interval"),
            ([], {"CACHE_ALERT_FOR": "5 minutes"}, "CACHE_ALERT_FOR"),
            ([], {"CACHE_MEMORY_CRITICAL_THRESHOLD_MB": "-1"}, "CACHE_MEMORY_CRITICAL"),
            (["--web.listen-address", "localhost"], {}, "--web.listen-address"),
            (["--cache.max-names", "0"], {}, "--cache.max-names"),
            (["--alerts.hit-ratio-critical", "0.9"], {}, "alerts.hit-ratio-critical"),
        ]
    )
)
def test_bad_input_in_a_real_process(case: tuple[list[str], dict[str, str], str]) -> None:
    args, environ, name = case
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cachewatch.cli",
            "demo",
            *args,
            *safe_for(args[0][2:] if args else ""),
        ],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_naming(Outcome(result.returncode, result.stderr), name)
    assert result.stdout == ""


# --- NAME=PREFIX pairs (cachewatch serve --redis.cache) -----------------------------------------
SERVE = ["--redis.addr", "redis://127.0.0.1:1/0", "--web.listen-address", "127.0.0.1:0"]
cache_names = st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True)
prefixes = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=","),
    min_size=1,
    max_size=30,
)


@quick
@given(pairs=st.lists(st.tuples(cache_names, prefixes), min_size=1, max_size=5))
def test_valid_name_prefix_pairs_become_logical_caches(pairs: list[tuple[str, str]]) -> None:
    names = [name for name, _ in pairs]
    wanted = [prefix for _, prefix in pairs]
    flags = {"redis_caches": [f"{name}={prefix}" for name, prefix in pairs]}
    if len(set(names)) < len(names) or len(set(wanted)) < len(wanted):
        outcome = run(["serve", *(f"--redis.cache={v}" for v in flags["redis_caches"]), *SERVE])
        assert_one_line_naming(outcome, "--redis.cache")
        assert "given twice" in outcome.stderr
        return
    config = load_config("serve", {"redis_addr": SERVE[1], **flags}, {})
    assert [(c.name, c.prefix) for c in config.redis_caches] == pairs


bad_pairs = st.one_of(
    cache_names,  # no '='
    cache_names.map(lambda name: name + "="),  # empty prefix
    prefixes.map(lambda prefix: "=" + prefix),  # empty name
    st.tuples(st.text(min_size=1, max_size=10), prefixes)
    .filter(lambda pair: re.fullmatch(r"\s*[A-Za-z0-9_.:\-]{1,64}\s*", pair[0]) is None)
    .filter(lambda pair: "=" not in pair[0])
    .map(lambda pair: f"{pair[0]}={pair[1]}"),  # a name with other characters
    st.text(alphabet="abc", min_size=65, max_size=80).map(lambda name: name + "=p:"),
)


@quick
@given(pair=bad_pairs, origin=st.sampled_from(["flag", "env", "yaml"]))
def test_invalid_name_prefix_pairs_are_refused_in_one_line(pair: str, origin: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if origin == "flag":
            args, environ, name = [f"--redis.cache={pair}"], {}, "--redis.cache"
        elif origin == "env":
            args, environ, name = [], {"CACHEWATCH_REDIS_CACHE": pair}, "CACHEWATCH_REDIS_CACHE"
        else:
            path = Path(tmp) / "cachewatch.yml"
            path.write_text(yaml.safe_dump({"redis": {"cache": [pair]}}))
            args, environ, name = ["--config.file", str(path)], {}, "redis.cache"
        if origin == "env":
            assume(pair.strip(", ") and "\x00" not in pair)  # unset, or impossible in env
        outcome = run(["serve", *args, *SERVE], environ)
        assert_one_line_naming(outcome, name)


SERVE_SETTINGS = {
    meta.key: (name, meta)
    for name, meta, _ in settings_for("serve")
    if meta.key not in FILE_SETTINGS
    and not meta.key.endswith("-file")
    and meta.key not in ("web.listen-address", "redis.addr")
}


@quick
@given(key=st.sampled_from(sorted(SERVE_SETTINGS)), raw=text_values)
def test_any_value_of_any_serve_setting_is_accepted_or_refused_in_one_line(
    key: str, raw: str
) -> None:
    _, meta = SERVE_SETTINGS[key]
    field_name = SERVE_SETTINGS[key][0]
    try:
        load_config("serve", {"redis_addr": SERVE[1], field_name: raw}, {})
    except ConfigError:
        assert_one_line_naming(run(["serve", f"{meta.flag}={raw}", *SERVE]), meta.flag, key)


@quick
@given(text=st.text(alphabet="ab\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", min_size=1, max_size=8))
def test_values_with_line_breaks_are_quoted_in_one_line(text: str) -> None:
    for args in (
        ["demo", "--config.file", f"/nonexistent/{text}"],
        ["serve", "--probe.config.file", f"/nonexistent/{text}", *SERVE],
        ["demo", f"stray{text}"],
    ):
        outcome = run([*args, *SAFE] if args[0] == "demo" else args)
        assert_one_line_naming(outcome, args[1] if args[1].startswith("--") else "stray")
