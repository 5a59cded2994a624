#!/usr/bin/env python3
"""The cachewatch stack without Docker: Debian's redis-server, prometheus and
prometheus-alertmanager with the repository's rule files and routing, the demo app, an SMTP
sink (aiosmtpd) and a webhook logger, all on localhost. Ctrl-C stops everything.

Only addresses, paths and (with --fast) timings are rewritten; see cachewatch.bundle.localize.
Usage: python scripts/stack.py [--fast] [--workdir DIR] [--render-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "exporter"))

from cachewatch.bundle import localize  # noqa: E402

PORTS = {
    "redis": int(os.environ.get("STACK_REDIS_PORT", "16379")),
    "demo": int(os.environ.get("STACK_DEMO_PORT", "10287")),
    "exporter": int(os.environ.get("STACK_EXPORTER_PORT", "10288")),
    "prometheus": int(os.environ.get("STACK_PROMETHEUS_PORT", "9090")),
    "alertmanager": int(os.environ.get("STACK_ALERTMANAGER_PORT", "9093")),
    "smtp": int(os.environ.get("STACK_SMTP_PORT", "1025")),
    "webhook": int(os.environ.get("STACK_WEBHOOK_PORT", "8080")),
}
FAST_WINDOWS = {"5m": "1m", "30m": "5m"}
FAST_WAITS = {"5m": "30s"}


def binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not path:
        sys.exit(f"stack: {name} is not installed (apt-get install {name})")
    return path


def has_serve() -> bool:
    from cachewatch.cli import COMMANDS

    return "serve" in COMMANDS


def render(workdir: Path, fast: bool) -> tuple[Path, Path]:
    """Write the localized Prometheus and Alertmanager configs; returns their paths."""
    rule_dir = workdir / "prometheus" / "rules"
    for path in sorted((ROOT / "prometheus/rules").glob("*.yml")):
        document = localize.load(path)
        if fast:
            document = localize.shorten_rules(document, FAST_WINDOWS, FAST_WAITS)
        localize.dump(document, rule_dir / path.name)
    targets = {
        "cachewatch-demo": [f"127.0.0.1:{PORTS['demo']}"],
        "cachewatch": [f"127.0.0.1:{PORTS['exporter']}"],
    }
    prometheus = localize.dump(
        localize.prometheus_config(
            ROOT,
            targets=targets,
            alertmanagers=[f"127.0.0.1:{PORTS['alertmanager']}"],
            rule_dir=rule_dir,
        ),
        workdir / "prometheus" / "prometheus.yml",
    )
    password = workdir / "smtp_password"
    password.write_text(os.environ.get("SMTP_PASSWORD", "unused-by-the-local-sink"))
    password.chmod(0o600)
    timings = {"group_wait": "10s", "group_interval": "30s"} if fast else None
    alertmanager = localize.dump(
        localize.alertmanager_config(
            ROOT,
            smtp=f"127.0.0.1:{PORTS['smtp']}",
            webhook_url=f"http://127.0.0.1:{PORTS['webhook']}/alertmanager",
            password_file=password,
            timings=timings,
        ),
        workdir / "alertmanager" / "alertmanager.yml",
    )
    return prometheus, alertmanager


class _WebhookLogger(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body: Any = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            print(
                f"webhook: {alert.get('status')} {labels.get('alertname')} "
                f"severity={labels.get('severity')} cache={labels.get('cache', '-')} "
                f"{alert.get('annotations', {}).get('summary', '')}",
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="short windows and waits")
    parser.add_argument("--workdir", type=Path, help="keep state here (default: a temp dir)")
    parser.add_argument("--render-only", action="store_true", help="write the configs, exit")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cachewatch-stack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    prometheus_yml, alertmanager_yml = render(workdir, args.fast)
    if args.render_only:
        print(prometheus_yml)
        print(alertmanager_yml)
        return 0

    python = sys.executable
    cachewatch = [python, "-m", "cachewatch.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporter")}
    redis_url = f"redis://127.0.0.1:{PORTS['redis']}/0"
    commands: list[tuple[str, list[str]]] = [
        (
            "redis",
            [
                binary("redis-server"),
                "--port",
                str(PORTS["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
        ),
        ("demo", [*cachewatch, "demo", f"--web.listen-address=127.0.0.1:{PORTS['demo']}"]),
        ("smtp", [python, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{PORTS['smtp']}"]),
        (
            "alertmanager",
            [
                binary("prometheus-alertmanager"),
                f"--config.file={alertmanager_yml}",
                f"--storage.path={workdir / 'alertmanager' / 'data'}",
                f"--web.listen-address=127.0.0.1:{PORTS['alertmanager']}",
                "--cluster.listen-address=",
            ],
        ),
        (
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={prometheus_yml}",
                f"--storage.tsdb.path={workdir / 'prometheus' / 'data'}",
                f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}",
                "--enable-feature=exemplar-storage",
            ],
        ),
    ]
    if has_serve():
        commands.insert(
            1,
            (
                "exporter",
                [
                    *cachewatch,
                    "serve",
                    f"--redis.addr={redis_url}",
                    f"--web.listen-address=127.0.0.1:{PORTS['exporter']}",
                ],
            ),
        )
    else:
        commands.insert(
            1,
            (
                "exporter",
                [
                    binary("prometheus-redis-exporter"),
                    "-redis.addr",
                    redis_url,
                    "-web.listen-address",
                    f"127.0.0.1:{PORTS['exporter']}",
                ],
            ),
        )

    hook = ThreadingHTTPServer(("127.0.0.1", PORTS["webhook"]), _WebhookLogger)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for name, argv in commands:
            log = (workdir / f"{name}.log").open("ab")
            stdout = None if name == "smtp" else log
            processes.append((name, subprocess.Popen(argv, env=env, stdout=stdout, stderr=log)))
        print(f"stack running (logs and data in {workdir}); Ctrl-C stops it")
        print(f"  Prometheus    http://127.0.0.1:{PORTS['prometheus']}")
        print(f"  Alertmanager  http://127.0.0.1:{PORTS['alertmanager']}")
        print(f"  demo          http://127.0.0.1:{PORTS['demo']}/metrics")
        print(f"  exporter      http://127.0.0.1:{PORTS['exporter']}/metrics")
        print("  e-mail is printed here by the SMTP sink; webhooks as 'webhook: ...' lines")
        while not stop.wait(1):
            for name, process in processes:
                if process.poll() is not None:
                    print(
                        f"stack: {name} exited with {process.returncode}; see "
                        f"{workdir / (name + '.log')}",
                        file=sys.stderr,
                    )
                    return 1
    except KeyboardInterrupt:
        pass
    finally:
        for _name, process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for _name, process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        hook.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
