"""The ``cachewatch`` command: parse flags, load the configuration, run a subcommand.

User mistakes end in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from .._version import __version__
from ..config import Config, ConfigError, describe, files, load_config, settings_for
from ..config.values import parse_bool
from .errors import UserFacingError, one_line
from .extras import missing_extra, missing_extra_message

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13
"""What a shell reports for a program that SIGPIPE ended (``yes | head``)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[Config, argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    takes_settings: bool = True


def _add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    for name, meta, default in settings_for(command):
        text = f"{meta.help} (default: {meta.show(default)}; env {meta.env})"
        if meta.secret:
            text = f"{meta.help} (env {meta.env})"
        if meta.multiple:
            parser.add_argument(
                meta.flag, dest=name, metavar=meta.metavar, action="append", help=text
            )
        elif meta.parse is parse_bool:  # --redis.cluster alone means true
            parser.add_argument(
                meta.flag, dest=name, metavar=meta.metavar, nargs="?", const="true", help=text
            )
        else:
            parser.add_argument(meta.flag, dest=name, metavar=meta.metavar, help=text)


def _flags(args: argparse.Namespace) -> dict[str, object]:
    """The settings given on the command line (argparse's namespace without the command)."""
    return {k: v for k, v in vars(args).items() if k != "command"}


def _reloader(command: str, args: argparse.Namespace) -> Callable[[], Config]:
    """Loads the configuration as at start: the same flags, the environment and file of now."""
    flags = _flags(args)
    return lambda: load_config(command, flags)


def _run_demo(config: Config, args: argparse.Namespace) -> int:
    from .run import run_demo

    return run_demo(config, _reloader("demo", args))


def _run_serve(config: Config, args: argparse.Namespace) -> int:
    from .run import run_serve

    return run_serve(config, _reloader("serve", args))


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="YAML configuration file to validate")


def _run_check_config(_config: Config, args: argparse.Namespace) -> int:
    from ..analysis.definitions import alert_definitions

    config = load_config("check-config", {"config_file": args.file}, environ={})
    files.read_files(config, redis=True)  # the files the settings name must load too
    alert_definitions(config.alerts)  # custom alerts must not take a built-in one's name
    print(json.dumps(describe(config), indent=2, sort_keys=True), flush=True)
    print(f"{args.file}: ok", file=sys.stderr)
    return EXIT_OK


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", default=".", metavar="DIR",
        help="repository root to write prometheus/ and grafana/ under (default: .)",
    )  # fmt: skip
    parser.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 naming every generated file that is missing or stale",
    )  # fmt: skip


def _run_generate(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bundle.generate import stale, write

    if config.alert_rate_window < 120:
        raise ConfigError(
            "alerts.rate-window: the generated rules need at least 2m (4 scrapes at 30s); "
            f"got {config.alert_rate_window:g}s"
        )
    root = Path(args.output)
    if args.check:
        outdated = stale(config.bundle, root)
        if outdated:
            print(
                f"cachewatch: error: generated files are stale (run cachewatch generate): "
                f"{', '.join(outdated)}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        print(f"{root}: generated files are current", file=sys.stderr)
        return EXIT_OK
    for path in write(config.bundle, root):
        print(f"wrote {root / path}")
    return EXIT_OK


def _alerts_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", metavar="ACTION", parser_class=_Parser)
    sub.required = True
    actions = {
        "list": "alerts Alertmanager holds now (active, silenced and inhibited ones too)",
        "silences": "silences (acknowledgements) Alertmanager holds",
        "ack": "acknowledge an alert: a silence for ALERTNAME (and --cache) for --duration",
    }
    for name, help_text in actions.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        for _field, meta, default in settings_for("alerts"):
            child.add_argument(
                meta.flag, dest=_field, metavar=meta.metavar, default=argparse.SUPPRESS,
                help=f"{meta.help} (default: {meta.show(default)}; env {meta.env})",
            )  # fmt: skip
        if name == "ack":
            child.add_argument("alertname", help="alert name, e.g. CacheHitRatioLow")
            child.add_argument("--cache", help="only this cache's alert")
            child.add_argument(
                "--label", action="append", default=[], metavar="NAME=VALUE",
                help="only alerts with this label too, e.g. job=search-api (repeatable)",
            )  # fmt: skip
            child.add_argument("--duration", default="2h", help="how long (default: 2h)")
            child.add_argument("--comment", required=True, help="why (shown to everyone)")
            child.add_argument("--author", help="created by (default: the user name)")


def _run_alerts(config: Config, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from ..config import parse_positive_duration
    from .alertmanager import AlertmanagerClient, format_alert, format_silence

    client = AlertmanagerClient(config.alertmanager_url)
    if args.alerts_command == "list":
        alerts = client.alerts(active_only=False)
        for alert in alerts:
            print(format_alert(alert))
        print(f"{len(alerts)} alert(s) at {client.shown}", file=sys.stderr)
    elif args.alerts_command == "silences":
        silences = client.silences()
        for silence in silences:
            print(format_silence(silence))
        print(f"{len(silences)} silence(s) at {client.shown}", file=sys.stderr)
    else:
        try:
            seconds = parse_positive_duration(args.duration)
        except ValueError as exc:
            raise ConfigError(f"--duration: {exc}") from None
        if not args.comment.strip():
            raise ConfigError("--comment: must not be empty")
        labels = dict(_label_matcher(text) for text in args.label)
        silence_id = client.silence(
            args.alertname,
            timedelta(seconds=seconds),
            args.comment,
            args.cache,
            args.author,
            labels=labels,
        )
        scope = {**({"cache": args.cache} if args.cache else {}), **labels}
        target = args.alertname + "".join(f" {k}={v}" for k, v in scope.items())
        print(f"acknowledged {target} for {args.duration}: silence {silence_id}")
    return EXIT_OK


def _label_matcher(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or not value:
        raise ConfigError(f"--label: expected NAME=VALUE, got {text!r}")
    return name, value


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_report(config: Config, args: argparse.Namespace) -> int:
    from .report import run_report

    return run_report(config.report_url, args.json)


COMMANDS: dict[str, Command] = {
    "serve": Command(
        "serve", "watch a Redis server: server stats and logical caches by key prefix", _run_serve
    ),
    "generate": Command(
        "generate",
        "write the Prometheus rules, promtool tests and Grafana dashboards for these thresholds",
        _run_generate,
        _generate_arguments,
    ),
    "alerts": Command(
        "alerts",
        "list alerts and silences in Alertmanager, or acknowledge an alert (a silence)",
        _run_alerts,
        _alerts_arguments,
    ),
    "demo": Command(
        "demo", "run the demo: four in-process caches under a synthetic workload", _run_demo
    ),
    "report": Command(
        "report",
        "print a running cachewatch's per-cache report with recommendations",
        _run_report,
        _report_arguments,
    ),
    "check-config": Command(
        "check-config",
        "validate a YAML configuration file and print the effective settings",
        _run_check_config,
        _check_config_arguments,
        takes_settings=False,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cachewatch",
        description="Cache observability for Prometheus: per-cache metrics, trends, alerts.",
        epilog="Each flag can also be set by the environment variable named in its help, or in "
        "the YAML file given by --config.file. Flags win over the environment, which wins "
        "over the file.",
    )
    parser.add_argument("--version", action="version", version=f"cachewatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS.values():
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.takes_settings:
            _add_settings(child, command.name)
        if command.add_arguments is not None:
            command.add_arguments(child)
    return parser


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A reader that stops reading (``cachewatch report --json | head``)
    ends it quietly, as it ends ``cat``."""
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    command = COMMANDS[args.command]
    try:
        config = load_config(command.name, _flags(args)) if command.takes_settings else Config()
        return command.run(config, args)
    except ConfigError as exc:
        print(f"cachewatch: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except UserFacingError as exc:
        print(f"cachewatch: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print(f"cachewatch: error: {missing_extra_message(command.name, extra)}", file=sys.stderr)
        return EXIT_FAILURE
