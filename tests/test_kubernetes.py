"""deploy/kubernetes/ (bundle/kubernetes.py) without a cluster: kustomize renders it, core kinds
pass kubernetes-validate, the Operator kinds validate strictly against their CRDs' OpenAPI
schemas (tests/data/k8s-schemas/), and the objects hold exactly the generated rules, routes
and dashboards. The Deployment's probes are checked against a real exporter and Redis."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from .servers import LOOPBACK, RedisServer, free_port, require_binary, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy/kubernetes"
SCHEMAS = Path(__file__).resolve().parent / "data/k8s-schemas"
KUBERNETES_VERSION = "1.30.0"
OPERATOR_KINDS = {"PrometheusRule", "ServiceMonitor", "PodMonitor", "AlertmanagerConfig"}


class _Loader(yaml.SafeLoader):
    """PyYAML (YAML 1.1) reads a bare ``=`` as the 'value' tag; Kubernetes (YAML 1.2) reads
    a string. Both the CRDs (matchType's enum) and kustomize's output spell it bare."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:value", _plain)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        [require_binary("kubectl"), "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.load_all(result.stdout, Loader=_Loader) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def crd_schema(kind: str) -> dict[str, Any]:
    for path in SCHEMAS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=_Loader)
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
            return strict(version["schema"]["openAPIV3Schema"])
    raise LookupError(kind)


def strict(schema: Any) -> Any:
    """The OpenAPI schema as JSON Schema that refuses unknown fields, as a structural schema
    prunes them (a typo would be dropped silently by the API server, so it is an error here)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate_crd(document: dict[str, Any]) -> None:
    schema = crd_schema(document["kind"])
    jsonschema.Draft7Validator(schema).validate(document)
    if document["kind"] == "AlertmanagerConfig":
        # Child routes are kept unpruned by the CRD; the Operator reads them as routes.
        route = schema["properties"]["spec"]["properties"]["route"]
        for child in document["spec"]["route"].get("routes", []):
            jsonschema.Draft7Validator(route).validate(child)


# --- rendering and validation ----------------------------------------------------------------
def test_kustomize_renders_every_generated_object(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds.count("PrometheusRule") == 3
    assert kinds.count("ConfigMap") == 6  # five dashboards and the notification templates
    assert {"ServiceMonitor", "PodMonitor", "AlertmanagerConfig", "Deployment", "Service"} <= set(
        kinds
    )
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    files = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == files
    for o in rendered:
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "cachewatch", o["kind"]


def test_core_kinds_pass_kubernetes_validate(rendered: list[dict[str, Any]]) -> None:
    core = [o for o in rendered if o["kind"] not in OPERATOR_KINDS]
    assert {o["kind"] for o in core} == {"ConfigMap", "Deployment", "Service"}
    for document in core:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_operator_kinds_validate_against_their_crds(rendered: list[dict[str, Any]]) -> None:
    operator = [o for o in rendered if o["kind"] in OPERATOR_KINDS]
    assert {o["kind"] for o in operator} == OPERATOR_KINDS
    for document in operator:
        validate_crd(document)


def test_the_validation_catches_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    """The checks above can fail: a typo in each kind is refused."""
    (monitor,) = by_kind(rendered, "ServiceMonitor")
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["scrapeIntreval"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="scrapeIntreval"):
        validate_crd(broken)
    (config,) = by_kind(rendered, "AlertmanagerConfig")
    broken = copy.deepcopy(config)
    broken["spec"]["route"]["routes"][0]["matchers"][0]["matchType"] = "=="
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(broken)
    (deployment,) = by_kind(rendered, "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_commented_secured_podmonitor_is_valid_too(rendered: list[dict[str, Any]]) -> None:
    text = (DEPLOY / "podmonitor-embedded.yaml").read_text()
    lines = [line[3:] for line in text.splitlines() if line.startswith("#  ")]
    secured = yaml.safe_load("\n".join(lines))
    assert secured["podMetricsEndpoints"][0]["scheme"] == "https"
    (monitor,) = by_kind(rendered, "PodMonitor")
    variant = copy.deepcopy(monitor)
    variant["spec"]["podMetricsEndpoints"] = secured["podMetricsEndpoints"]
    validate_crd(variant)


# --- the same source as the plain files --------------------------------------------------------
def test_prometheus_rules_hold_exactly_the_generated_rules(rendered: list[dict[str, Any]]) -> None:
    objects = {o["metadata"]["name"]: o for o in by_kind(rendered, "PrometheusRule")}
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "prometheus/rules").glob("*")}
    assert set(objects) == set(files)
    for name, document in files.items():
        assert objects[name]["spec"]["groups"] == document["groups"], name


def test_dashboards_are_configmaps_for_the_grafana_sidecar(rendered: list[dict[str, Any]]) -> None:
    maps = [
        o
        for o in by_kind(rendered, "ConfigMap")
        if "grafana_dashboard" in o["metadata"].get("labels", {})
    ]
    committed = {p.name: json.loads(p.read_text()) for p in (ROOT / "grafana/dashboards").glob("*")}
    shipped = {}
    for configmap in maps:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "cachewatch"
        ((name, text),) = configmap["data"].items()
        shipped[name] = json.loads(text)
    assert shipped == committed


def test_alertmanager_config_has_the_same_routes_receivers_and_inhibition(
    rendered: list[dict[str, Any]],
) -> None:
    plain = yaml.safe_load((ROOT / "alertmanager/alertmanager.yml").read_text())
    (config,) = by_kind(rendered, "AlertmanagerConfig")
    spec = config["spec"]
    route = spec["route"]
    assert route["receiver"] == plain["route"]["receiver"]
    assert route["groupBy"] == plain["route"]["group_by"] == ["alertname", "job", "cache"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)
        assert route[camel] == plain["route"][key]

    def matchers(found: list[dict[str, str]]) -> list[str]:
        return [f'{m["name"]}="{m["value"]}"' for m in found if m["matchType"] == "="]

    assert [(r["receiver"], matchers(r["matchers"])) for r in route["routes"]] == [
        (r["receiver"], r["matchers"]) for r in plain["route"]["routes"]
    ]
    (inhibit,) = spec["inhibitRules"]
    (expected,) = plain["inhibit_rules"]
    assert matchers(inhibit["sourceMatch"]) == expected["source_matchers"]
    assert matchers(inhibit["targetMatch"]) == expected["target_matchers"]
    assert inhibit["equal"] == expected["equal"]
    receivers = {r["name"]: r for r in spec["receivers"]}
    for receiver in plain["receivers"]:
        mine = receivers[receiver["name"]]
        hooks = [(h["url"], h["sendResolved"]) for h in mine["webhookConfigs"]]
        assert hooks == [(h["url"], h["send_resolved"]) for h in receiver["webhook_configs"]]
        for mail, theirs in zip(
            mine.get("emailConfigs", []), receiver.get("email_configs", []), strict=True
        ):
            assert (mail["to"], mail["text"], mail["html"]) == (
                theirs["to"],
                theirs["text"],
                theirs["html"],
            )
            assert mail["authPassword"] == {"name": "cachewatch-smtp", "key": "password"}
    (templates,) = [o for o in by_kind(rendered, "ConfigMap") if "cachewatch.tmpl" in o["data"]]
    assert (
        templates["data"]["cachewatch.tmpl"]
        == (ROOT / "alertmanager/templates/cachewatch.tmpl").read_text()
    )


def test_monitors_scrape_serve_and_embedded_apps_under_their_own_job(
    rendered: list[dict[str, Any]],
) -> None:
    (service,) = by_kind(rendered, "Service")
    (monitor,) = by_kind(rendered, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port = monitor["spec"]["endpoints"][0]["port"]
    assert port in {p["name"] for p in service["spec"]["ports"]}
    # The Service's name is the job: CachewatchExporterDown watches job=~"cachewatch.*".
    assert re.fullmatch("cachewatch.*", service["metadata"]["name"])
    (pods,) = by_kind(rendered, "PodMonitor")
    assert pods["spec"]["jobLabel"] == "app.kubernetes.io/name"


# --- the Deployment -------------------------------------------------------------------------
def container(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(rendered, "Deployment")
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return found  # type: ignore[no-any-return]


def test_deployment_is_locked_down_and_sized(rendered: list[dict[str, Any]]) -> None:
    (deployment,) = by_kind(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= main["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= main["resources"]["limits"].keys()
    (secret,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secret["secretName"] == "cachewatch-redis"
    mount = next(m for m in main["volumeMounts"] if m["name"] == "redis-password")
    assert f"--redis.password-file={mount['mountPath']}/password" in main["args"]
    assert not any("password" in str(e).lower() for e in main.get("env", []))


def test_probes_never_read_alert_states(rendered: list[dict[str, Any]]) -> None:
    main = container(rendered)
    assert main["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert main["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    paths = {
        main[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert paths == {"/-/healthy", "/-/ready"}, paths


@pytest.fixture
def serve_like_the_deployment(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> Iterator[tuple[str, RedisServer]]:
    """``cachewatch serve`` with the Deployment's arguments, pointed at a real Redis."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis").start()
    password = tmp_path / "password"
    password.write_text("")
    port = free_port()
    args = []
    for arg in container(rendered)["args"]:
        if arg.startswith("--redis.addr="):
            arg = f"--redis.addr={redis.url}"
        elif arg.startswith("--redis.password-file="):
            continue  # this Redis has no password
        elif arg.startswith("--web.listen-address="):
            arg = f"--web.listen-address={LOOPBACK}:{port}"
        args.append(arg)
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, 20)
        yield f"http://{LOOPBACK}:{port}", redis
    finally:
        process.terminate()
        process.wait(10)
        redis.stop()


def _status(url: str) -> int:
    return requests.get(url, timeout=5).status_code


def _wait_status(url: str, status: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status(url) == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s")


def test_the_deployments_probes_follow_the_source_not_the_alerts(
    serve_like_the_deployment: tuple[str, RedisServer],
) -> None:
    base, redis = serve_like_the_deployment
    _wait_status(f"{base}/-/ready", 200)
    assert _status(f"{base}/-/healthy") == 200
    redis.stop()
    _wait_status(f"{base}/-/ready", 503)
    assert _status(f"{base}/-/healthy") == 200, "a Redis outage must not restart the pod"


def test_the_documented_overlay_renders_and_patches_what_it_says(tmp_path: Path) -> None:
    docs = (ROOT / "docs/scale.md").read_text()
    block = docs.split("An overlay to copy", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    overlay = tmp_path / "overlays/production"
    overlay.mkdir(parents=True)
    base = os.path.relpath(DEPLOY, overlay)
    (overlay / "kustomization.yaml").write_text(block.replace("../../deploy/kubernetes", base))
    result = subprocess.run(
        [require_binary("kubectl"), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.load_all(result.stdout, Loader=_Loader) if d]
    assert all(o["metadata"].get("namespace") == "monitoring" for o in objects)
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in objects)
    main = container(objects)
    assert main["image"] == "registry.example.com/cachewatch:0.1.0"
    assert "--redis.addr=rediss://redis-master.cache.svc:6380/0" in main["args"]
    assert "--redis.password-file=/etc/cachewatch/redis/password" in main["args"]
    (config,) = by_kind(objects, "AlertmanagerConfig")
    mail = config["spec"]["receivers"][1]["emailConfigs"][0]
    assert (mail["smarthost"], mail["requireTLS"]) == ("smtp.example.com:587", True)
    validate_crd(config)
