"""The repository's Prometheus and Alertmanager configs, rewritten for another place.

``make stack`` (native Debian servers on localhost) and the end-to-end test run exactly the
committed rule files and routing; only addresses, file paths and timings are rewritten here,
never matchers, receivers, rules or thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT_FILES = ("prometheus/prometheus.yml", "alertmanager/alertmanager.yml")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def prometheus_config(
    root: Path,
    *,
    targets: Mapping[str, list[str]],
    alertmanagers: list[str],
    rule_dir: Path | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> dict[str, Any]:
    """``prometheus.yml`` with each job's targets, the Alertmanagers and the rule directory
    replaced; jobs missing from ``targets`` are dropped."""
    config: dict[str, Any] = load(root / "prometheus/prometheus.yml")
    rules = rule_dir or (root / "prometheus/rules")
    config["rule_files"] = [str(rules / Path(p).name) for p in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": alertmanagers}]}]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
            jobs.append(job)
    for name, addresses in targets.items():
        if name not in {job["job_name"] for job in jobs}:
            jobs.append({"job_name": name, "static_configs": [{"targets": list(addresses)}]})
    config["scrape_configs"] = jobs
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["scrape_timeout"] = scrape_interval
    if evaluation_interval:
        config["global"]["evaluation_interval"] = evaluation_interval
    return config


def alertmanager_config(
    root: Path,
    *,
    smtp: str,
    webhook_url: str,
    password_file: Path,
    timings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``alertmanager.yml`` with the SMTP relay, webhook URL, password file and template
    path made local; ``timings`` may replace the route's group_wait/interval/repeat."""
    config: dict[str, Any] = load(root / "alertmanager/alertmanager.yml")
    config["global"]["smtp_smarthost"] = smtp
    config["global"]["smtp_auth_password_file"] = str(password_file)
    config["templates"] = [str(root / "alertmanager" / t) for t in config["templates"]]
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    for key, value in (timings or {}).items():
        config["route"][key] = value
    return config


_WINDOW = re.compile(r"\[(\d+[smhdw])\]")


def shorten_rules(
    document: dict[str, Any], windows: Mapping[str, str], waits: Mapping[str, str]
) -> dict[str, Any]:
    """Rule files with range windows and ``for`` durations replaced (for fast tests).

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


def dump(document: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
