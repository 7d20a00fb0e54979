"""The Docker stack's configuration, validated statically (the Grafana images cannot be
pulled here): docker-compose.yml, Alloy, Loki, Tempo, Grafana provisioning, dashboards.

What "statically" means, per file:

- compose: YAML structure checked here (images pinned by version, every service on
  the host network, every bind-mounted file present, Locust scalable); plus
  ``docker-compose config`` (Debian's docker-compose) when installed;
- Alloy: every component reference (``x.y.label.input|receiver``) points to a
  component block defined in the file, braces balance, the seed's 15 s scrape;
- Loki/Tempo: YAML parses, the fields stack/backends/*.py rely on are set;
- Grafana: provisioning ``apiVersion: 1``, datasource links point to defined uids;
  dashboards: unique panel ids, grid positions, every target has PromQL, which
  ``promtool`` (the real parser, via ``promtool check rules``) accepts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from dashboard_queries import dashboard_queries, dashboards
from docker_engine import unavailable

STACK = Path(__file__).resolve().parents[2] / "stack"
COMPOSE = STACK / "docker-compose.yml"
DOCKER = STACK / "docker"
GRAFANA = STACK / "grafana"
PINNED = {
    "grafana/grafana", "grafana/loki", "grafana/tempo", "grafana/alloy", "ghcr.io/shopify/toxiproxy",
}  # fmt: skip


def require_tool(name: str, install: str) -> None:
    """Skip without ``name`` (fail under CI, which installs it)."""
    if shutil.which(name) is None:
        unavailable(f"{name} is not installed ({install})")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_images_pinned_and_host_network():
    services = compose()["services"]
    expected = {
        "api", "gateway", "postgres", "proxy", "collector", "alloy", "prometheus",
        "alertmanager", "loki", "tempo", "grafana", "master", "worker",
    }  # fmt: skip
    assert expected <= set(services)
    repos = set()
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image} is not pinned"
        assert re.match(r"^v?\d+\.\d+\.\d+$", tag), f"{name}: {tag} is not a version"
        repos.add(repo)
        assert svc.get("network_mode") == "host", name
    assert repos >= PINNED
    # the project's own images are built FROM the base image, passed as a build argument
    for name in ("api", "postgres", "prometheus"):
        build = services[name]["build"]
        assert "BASE_IMAGE" in build["args"] and (STACK / build["context"] / build["dockerfile"])


def test_compose_bind_mounts_exist_and_workers_scale():
    services = compose()["services"]
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (STACK / source).exists(), f"{name}: {source} is missing"
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    assert "--worker" in worker["command"] and "--master" in services["master"]["command"]


def test_pulled_images_sit_behind_profiles_with_a_local_stand_in_each():
    services = compose()["services"]
    profiles = {name: set(svc.get("profiles", ())) for name, svc in services.items()}
    pulled = {n for n, svc in services.items() if not svc["image"].startswith("paychaos/")}
    assert pulled == {"alloy", "loki", "tempo", "grafana", "toxiproxy"}
    assert all(profiles[n] == {"grafana"} for n in pulled - {"toxiproxy"})
    assert profiles["toxiproxy"] == {"toxiproxy"} and profiles["proxy"] == {"local-proxy"}
    assert profiles["scraper"] == {"local-telemetry"}
    # the default set starts on its own: it depends on no profiled service
    for name, svc in services.items():
        if not profiles[name]:
            assert not [d for d in svc.get("depends_on", ()) if profiles[d]], name
    # the real Toxiproxy and the stand-in: same port, same proxies
    real, stand_in = services["toxiproxy"], services["proxy"]
    assert real["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert "-port=8474" in real["command"] and "--port 8474" in stand_in["command"]
    assert "-config=/config/proxies.json" in real["command"]
    assert (
        real["volumes"] == stand_in["volumes"] == ["./docker/proxies.json:/config/proxies.json:ro"]
    )


def test_no_secret_on_a_command_line():
    services = compose()["services"]
    for name, svc in services.items():
        command = svc.get("command", "")
        text = command if isinstance(command, str) else " ".join(command)
        assert "TOKEN" not in text and "token" not in text, name
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["PAYCHAOS_GATEWAY_ADMIN_TOKEN"] == "${PAYCHAOS_ADMIN_TOKEN:-}"
    assert services["api"]["environment"]["PAYCHAOS_API_ADMIN_TOKEN"] == "${PAYCHAOS_ADMIN_TOKEN:-}"


def test_the_scraper_scrapes_what_alloy_scrapes():
    alloy = (DOCKER / "alloy" / "config.alloy").read_text()
    alloy_jobs = set(re.findall(r'job_name\s*=\s*"([\w-]+)"', alloy)) - {"observability"}
    scraper = yaml.safe_load((DOCKER / "prometheus" / "scraper.yml").read_text())
    assert {job["job_name"] for job in scraper["scrape_configs"]} == alloy_jobs
    assert scraper["remote_write"][0]["url"] == "http://127.0.0.1:9090/api/v1/write"


def test_dockerfiles_take_the_base_image_as_build_argument():
    for dockerfile in DOCKER.glob("*.Dockerfile"):
        text = dockerfile.read_text()
        assert re.search(r"^ARG BASE_IMAGE=", text, re.M), dockerfile.name
        assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M), dockerfile.name


def test_docker_compose_config_accepts_the_file():
    require_tool("docker-compose", "apt-get install docker-compose")
    for profiles in ((), ("grafana", "toxiproxy"), ("local-telemetry", "local-proxy")):
        flags = [item for p in profiles for item in ("--profile", p)]
        result = subprocess.run(
            ["docker-compose", "-f", str(COMPOSE), *flags, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{profiles}: {result.stderr}"


# ------------------------------------------------------------------ Alloy

_BLOCK = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+)\s+\"([A-Za-z0-9_]+)\"\s*\{", re.M)
_REF = re.compile(
    r"\b((?:otelcol|loki|prometheus|faro)\.[a-z_.]+?)\.([A-Za-z0-9_]+)\.(input|receiver)\b"
)


def test_alloy_references_point_to_defined_components():
    text = (DOCKER / "alloy" / "config.alloy").read_text()
    code = re.sub(r"//.*", "", text)
    assert code.count("{") == code.count("}") and code.count("[") == code.count("]")
    defined = {f"{kind}.{label}" for kind, label in _BLOCK.findall(code)}
    assert {
        "otelcol.receiver.otlp.apps",
        "faro.receiver.browser",
        "prometheus.remote_write.prometheus",
        "loki.write.default",
    } <= defined
    refs = {f"{kind}.{label}" for kind, label, _ in _REF.findall(code)}
    assert refs and refs <= defined, refs - defined
    scrapes = re.findall(r'scrape_interval\s*=\s*"(\w+)"', code)
    assert scrapes and set(scrapes) == {"15s"}  # the seed: Alloy scrapes every 15 s


# ------------------------------------------------------------------ Loki, Tempo, Prometheus


def test_loki_keeps_structured_metadata_on_loopback():
    cfg = yaml.safe_load((DOCKER / "loki" / "loki.yaml").read_text())
    assert cfg["limits_config"]["allow_structured_metadata"] is True
    assert cfg["server"]["http_listen_port"] == 3100
    assert cfg["server"]["http_listen_address"] == "127.0.0.1"
    assert cfg["schema_config"]["configs"][0]["schema"] == "v13"  # OTLP needs tsdb + v13


def test_tempo_receives_otlp_where_alloy_sends():
    cfg = yaml.safe_load((DOCKER / "tempo" / "tempo.yaml").read_text())
    endpoint = cfg["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    alloy = (DOCKER / "alloy" / "config.alloy").read_text()
    assert f'endpoint = "{endpoint}"' in alloy
    assert cfg["server"]["http_listen_port"] == 3200


def test_compose_prometheus_config_passes_promtool(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    cfg = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    cfg["rule_files"] = [str(STACK / "prometheus" / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    am = (
        subprocess.run(
            ["amtool", "check-config", str(DOCKER / "alertmanager" / "alertmanager.yml")],
            capture_output=True,
            text=True,
            check=False,
        )
        if shutil.which("amtool")
        else None
    )
    assert am is None or am.returncode == 0, am and am.stdout + am.stderr


# ------------------------------------------------------------------ Grafana


def test_grafana_datasources_link_traces_logs_metrics():
    prov = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "datasources.yaml").read_text()
    )
    assert prov["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in prov["datasources"]}
    assert set(by_uid) == {"prometheus", "loki", "tempo"}
    tempo = by_uid["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    (derived,) = by_uid["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo" and derived["matcherRegex"] == "trace_id"
    (exemplar,) = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplar["datasourceUid"] == "tempo"
    # a literal $ must be written $$ in provisioning files (Grafana expands env vars)
    raw = (GRAFANA / "provisioning" / "datasources" / "datasources.yaml").read_text()
    assert "${__" not in raw.replace("$${__", "")


def test_dashboards_are_well_formed_and_cover_the_issue():
    dashes = dashboards()
    assert {"payments.json", "dependencies.json", "rum.json", "instance.json"} <= set(dashes)
    uids = [d["uid"] for d in dashes.values()]
    assert len(set(uids)) == len(uids)
    for name, dash in dashes.items():
        ids = [p["id"] for p in dash["panels"]]
        assert len(set(ids)) == len(ids), name
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] == "prometheus"
            assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert any("chaos_fault_active" in a.get("expr", "") for a in dash["annotations"]["list"])
    exprs = [e for _, e in dashboard_queries()]
    seed = 'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
    assert seed in exprs
    for needle in (
        "shop_payments_total",
        "shop_gateway_request_duration_seconds",
        "shop_db_operation_duration_seconds",
        "rum_web_vital",
        "instance_memory",
    ):
        assert any(needle in e for e in exprs), needle


def test_every_dashboard_query_parses_with_promtool(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
