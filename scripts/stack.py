#!/usr/bin/env python3
"""The cachewatch stack without Docker: Debian's redis-server, prometheus and
prometheus-alertmanager with the repository's rule files and routing, the demo app, an SMTP
sink (aiosmtpd) and a webhook logger, all on localhost. Ctrl-C stops everything.

The one launcher of the local stack: ``make stack`` runs it, and the end-to-end tests import
its renderers and commands (``tests/bundle_stack.py``). Only addresses, file paths and
timings are rewritten, never matchers, receivers, rules or thresholds.

Usage: python scripts/stack.py [--fast] [--fleet] [--workdir DIR] [--render-only]

``--fleet`` runs the scale-out shape instead: two "cluster" Prometheus servers (external label
``cluster``), each scraping its own demo services, remote-writing to a global Prometheus
that evaluates the rules generated with ``cluster,job`` as group labels.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
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
_WINDOW = re.compile(r"\[(\d+[smhdw])\]")


# --- the repository's configs, rewritten for this place ----------------------------------------
def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dump(document: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def shorten_rules(
    document: dict[str, Any], windows: Mapping[str, str], waits: Mapping[str, str]
) -> dict[str, Any]:
    """Rule files with range windows and ``for`` durations replaced (for fast runs).

    ``windows`` maps e.g. ``5m`` to ``10s`` inside ``[...]``; ``waits`` maps ``for`` values.
    """
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = _WINDOW.sub(
                lambda m: f"[{windows.get(m.group(1), m.group(1))}]", rule["expr"]
            )
            if "for" in rule:
                rule["for"] = waits.get(rule["for"], rule["for"])
    return document


def render_prometheus(
    workdir: Path,
    *,
    targets: Mapping[str, list[str]],
    alertmanagers: list[str],
    windows: Mapping[str, str] | None = None,
    waits: Mapping[str, str] | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
    bundle: Path | None = ROOT,
    name: str = "prometheus",
    external_labels: Mapping[str, str] | None = None,
    remote_write: str | None = None,
) -> Path:
    """``prometheus.yml`` under ``workdir/NAME`` with each job's targets, the Alertmanagers
    and the rule files of ``bundle`` (a repository root or a ``cachewatch generate --output``
    folder; None: no rules), shortened when ``windows``/``waits`` are given; jobs missing from
    ``targets`` are dropped, new ones added. ``external_labels`` and ``remote_write`` make it
    one cluster's Prometheus sending everything on to a global one."""
    rule_dir = workdir / name / "rules"
    rule_paths = sorted((bundle / "prometheus/rules").glob("*.yml")) if bundle else []
    for path in rule_paths:
        document = load(path)
        if windows or waits:
            document = shorten_rules(document, windows or {}, waits or {})
        dump(document, rule_dir / path.name)
    config: dict[str, Any] = load(ROOT / "prometheus/prometheus.yml")
    config["rule_files"] = [str(rule_dir / p.name) for p in rule_paths]
    if alertmanagers:
        config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": alertmanagers}]}]
    else:
        del config["alerting"]
    if external_labels:
        config["global"]["external_labels"] = dict(external_labels)
    if remote_write:
        # Short batches: the global Prometheus evaluates rules seconds after the scrape.
        queue = {"batch_send_deadline": "1s", "max_samples_per_send": 5000}
        config["remote_write"] = [{"url": remote_write, "queue_config": queue}]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
            jobs.append(job)
    for job_name, addresses in targets.items():
        if job_name not in {job["job_name"] for job in jobs}:
            jobs.append({"job_name": job_name, "static_configs": [{"targets": list(addresses)}]})
    config["scrape_configs"] = jobs
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["scrape_timeout"] = scrape_interval
    if evaluation_interval:
        config["global"]["evaluation_interval"] = evaluation_interval
    return dump(config, workdir / name / "prometheus.yml")


def render_alertmanager(
    workdir: Path,
    *,
    smtp: str,
    webhook_url: str,
    password_file: Path,
    timings: Mapping[str, str] | None = None,
    bundle: Path = ROOT,
) -> Path:
    """``alertmanager.yml`` under ``workdir/alertmanager`` (from ``bundle``, a repository root
    or a ``cachewatch generate --output`` folder) with the SMTP relay, webhook URL, password
    file and template path made local; ``timings`` may replace the route's
    group_wait/interval/repeat."""
    config: dict[str, Any] = load(bundle / "alertmanager/alertmanager.yml")
    config["global"]["smtp_smarthost"] = smtp
    config["global"]["smtp_auth_password_file"] = str(password_file)
    config["templates"] = [str(bundle / "alertmanager" / t) for t in config["templates"]]
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    for key, value in (timings or {}).items():
        config["route"][key] = value
    return dump(config, workdir / "alertmanager" / "alertmanager.yml")


# --- the servers' command lines ----------------------------------------------------------------
def binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not path:
        raise SystemExit(f"stack: {name} is not installed (apt-get install {name})")
    return path


def prometheus_command(config: Path, address: str, *, receiver: bool = False) -> list[str]:
    """Prometheus on ``config`` (its data beside it); ``receiver``: it accepts remote_write,
    standing in for Thanos Receive or Mimir (the same protocol)."""
    return [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={config.parent / 'data'}",
        f"--web.listen-address={address}",
        "--enable-feature=exemplar-storage",
        *(["--web.enable-remote-write-receiver"] if receiver else []),
    ]


def alertmanager_command(config: Path, workdir: Path, address: str) -> list[str]:
    return [
        binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager' / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
        f"--web.external-url=http://{address}",
    ]


# --- make stack ------------------------------------------------------------------------------
def render(workdir: Path, fast: bool) -> tuple[Path, Path]:
    """Write the localized Prometheus and Alertmanager configs; returns their paths."""
    prometheus = render_prometheus(
        workdir,
        targets={
            "cachewatch-demo": [f"127.0.0.1:{PORTS['demo']}"],
            "cachewatch": [f"127.0.0.1:{PORTS['exporter']}"],
        },
        alertmanagers=[f"127.0.0.1:{PORTS['alertmanager']}"],
        windows=FAST_WINDOWS if fast else None,
        waits=FAST_WAITS if fast else None,
    )
    alertmanager = render_alertmanager(
        workdir,
        smtp=f"127.0.0.1:{PORTS['smtp']}",
        webhook_url=f"http://127.0.0.1:{PORTS['webhook']}/alertmanager",
        password_file=_password(workdir),
        timings={"group_wait": "10s", "group_interval": "30s"} if fast else None,
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


# --- make stack-fleet ------------------------------------------------------------------------
CLUSTERS = ("a", "b")
FLEET_GROUP_LABELS = "cluster,job"
FLEET_SERVICES = {"shop-api": 2, "search-api": 1}
"""Demo services per cluster and their replicas."""


def generate_bundle(output: Path, group_labels: str, python: str = sys.executable) -> Path:
    """The bundle generated for ``group_labels`` under ``output`` (rules, routing, dashboards)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporter")}
    argv = [python, "-m", "cachewatch.cli", "generate", "--bundle.group-labels", group_labels,
            "--output", str(output)]  # fmt: skip
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return output


def render_cluster(
    workdir: Path,
    cluster: str,
    targets: Mapping[str, list[str]],
    global_address: str,
    **timing: Any,
) -> Path:
    """One cluster's Prometheus: scrapes its own targets, evaluates nothing, and sends every
    sample with ``cluster`` as an external label to the global Prometheus."""
    return render_prometheus(
        workdir,
        targets=targets,
        alertmanagers=[],
        bundle=None,
        name=f"prometheus-{cluster}",
        external_labels={"cluster": cluster},
        remote_write=f"http://{global_address}/api/v1/write",
        **timing,
    )


def render_global(workdir: Path, bundle: Path, alertmanager: str, **timing: Any) -> Path:
    """The global Prometheus: no targets of its own, the rules of ``bundle`` (generated with
    ``cluster`` among the group labels) over what the clusters remote-write."""
    return render_prometheus(
        workdir,
        targets={},
        alertmanagers=[alertmanager],
        bundle=bundle,
        name="prometheus-global",
        **timing,
    )


def fleet_commands(workdir: Path, fast: bool, python: str) -> list[tuple[str, list[str]]]:
    """Two clusters of demo services, each cluster's Prometheus, the global one, Alertmanager."""
    bundle = generate_bundle(workdir / "bundle", FLEET_GROUP_LABELS, python)
    timing: dict[str, Any] = {"windows": FAST_WINDOWS, "waits": FAST_WAITS} if fast else {}
    address = {name: f"127.0.0.1:{port}" for name, port in PORTS.items()}
    global_address, cluster_port = address["prometheus"], PORTS["prometheus"] + 1
    demo_port = PORTS["demo"] + 10
    alertmanager = render_alertmanager(
        workdir,
        smtp=address["smtp"],
        webhook_url=f"http://{address['webhook']}/alertmanager",
        password_file=_password(workdir),
        bundle=bundle,
    )
    config = render_global(workdir, bundle, address["alertmanager"], **timing)
    # The receiving end first: stopped in reverse, the clusters flush before it goes.
    commands: list[tuple[str, list[str]]] = [
        ("alertmanager", alertmanager_command(alertmanager, workdir, address["alertmanager"])),
        ("prometheus-global", prometheus_command(config, global_address, receiver=True)),
    ]
    for cluster in CLUSTERS:
        targets: dict[str, list[str]] = {}
        for service, replicas in FLEET_SERVICES.items():
            for replica in range(replicas):
                listen = f"127.0.0.1:{demo_port}"
                demo_port += 1
                targets.setdefault(service, []).append(listen)
                commands.append((f"{cluster}-{service}-{replica}", [
                    python, "-m", "cachewatch.cli", "demo", f"--web.listen-address={listen}",
                    "--seed", str(demo_port),
                ]))  # fmt: skip
        config = render_cluster(workdir, cluster, targets, global_address)
        commands.append((f"prometheus-{cluster}", prometheus_command(
            config, f"127.0.0.1:{cluster_port}")))  # fmt: skip
        cluster_port += 1
    return commands


def _password(workdir: Path) -> Path:
    password = workdir / "smtp_password"
    password.write_text(os.environ.get("SMTP_PASSWORD", "unused-by-the-local-sink"))
    password.chmod(0o600)
    return password


def single_commands(workdir: Path, fast: bool, python: str) -> list[tuple[str, list[str]]]:
    """Redis, the exporter watching it, the demo, Prometheus and Alertmanager."""
    prometheus_yml, alertmanager_yml = render(workdir, fast)
    cachewatch = [python, "-m", "cachewatch.cli"]
    redis_url = f"redis://127.0.0.1:{PORTS['redis']}/0"
    redis = [binary("redis-server"), "--port", str(PORTS["redis"]), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    links = [f"--links.prometheus-url=http://127.0.0.1:{PORTS['prometheus']}",
             f"--links.alertmanager-url=http://127.0.0.1:{PORTS['alertmanager']}"]  # fmt: skip
    exporter = [*cachewatch, "serve", f"--redis.addr={redis_url}", *links,
                f"--web.listen-address=127.0.0.1:{PORTS['exporter']}"]  # fmt: skip
    demo = [*cachewatch, "demo", *links, f"--web.listen-address=127.0.0.1:{PORTS['demo']}"]
    alertmanager = f"127.0.0.1:{PORTS['alertmanager']}"
    prometheus = f"127.0.0.1:{PORTS['prometheus']}"
    return [
        ("redis", redis),
        ("exporter", exporter),
        ("demo", demo),
        ("alertmanager", alertmanager_command(alertmanager_yml, workdir, alertmanager)),
        ("prometheus", prometheus_command(prometheus_yml, prometheus)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="short windows and waits")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="two clusters of demo services, each with its own Prometheus remote-writing to a "
        "global one that evaluates the rules generated with cluster among the group labels",
    )
    parser.add_argument("--workdir", type=Path, help="keep state here (default: a temp dir)")
    parser.add_argument("--render-only", action="store_true", help="write the configs, exit")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cachewatch-stack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    plan = fleet_commands if args.fleet else single_commands
    commands = plan(workdir, args.fast, python)
    if args.render_only:  # the Prometheus configs, then Alertmanager's
        configs = [a.split("=", 1)[1] for _, argv in commands for a in argv
                   if a.startswith("--config.file=")]  # fmt: skip
        print("\n".join(sorted(configs, key=lambda path: "alertmanager" in path)))
        return 0
    commands.append(("smtp", [python, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{PORTS['smtp']}"]))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporter")}

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
        if args.fleet:
            print(f"  global Prometheus  http://127.0.0.1:{PORTS['prometheus']}")
            for index, cluster in enumerate(CLUSTERS, 1):
                port = PORTS["prometheus"] + index
                print(f"  cluster {cluster}          http://127.0.0.1:{port}")
            print(f"  Alertmanager       http://127.0.0.1:{PORTS['alertmanager']}")
            print(f"  dashboards for this stack: {workdir / 'bundle/grafana/dashboards'}")
        else:
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
