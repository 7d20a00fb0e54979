"""prometheus.yml / alertmanager.yml rendering: values land in the YAML, tools accept it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.monitoring.config import (
    RULES_DIR,
    AlertmanagerSettings,
    PrometheusSettings,
    ScrapeTarget,
    format_duration,
    render_alertmanager_config,
    render_prometheus_config,
    write_config,
)
from paychaos.stack.monitoring.processes import check_alertmanager_config, check_config

WEBHOOK = "http://127.0.0.1:8102/alertmanager/webhook"


def _settings(**overrides: object) -> PrometheusSettings:
    base: dict[str, object] = {
        "targets": (
            ScrapeTarget("payment-api", "127.0.0.1", 8000),
            ScrapeTarget("gateway", "localhost", 8101, metrics_path="/internal/metrics"),
            ScrapeTarget("instance", "::1", 8105),
        ),
        "alertmanager_port": 9093,
    }
    base.update(overrides)
    return PrometheusSettings(**base)  # type: ignore[arg-type]


def test_prometheus_config_holds_intervals_rules_alertmanager_and_one_job_per_target() -> None:
    doc = yaml.safe_load(render_prometheus_config(_settings()))
    assert doc["global"] == {
        "scrape_interval": "5s",
        "scrape_timeout": "5s",
        "evaluation_interval": "5s",
    }
    assert doc["rule_files"] == [str(RULES_DIR.resolve() / "*.yml")]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}
    ]
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    assert list(jobs) == ["payment-api", "gateway", "instance"]
    assert jobs["payment-api"]["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
    assert jobs["payment-api"]["metrics_path"] == "/metrics"
    assert jobs["gateway"]["metrics_path"] == "/internal/metrics"
    assert jobs["instance"]["static_configs"] == [{"targets": ["[::1]:8105"]}]


def test_production_intervals_and_subsecond_durations_render() -> None:
    doc = yaml.safe_load(
        render_prometheus_config(
            _settings(scrape_interval_s=15.0, evaluation_interval_s=15.0, alertmanager_port=None)
        )
    )
    assert doc["global"]["scrape_interval"] == "15s"
    assert doc["global"]["scrape_timeout"] == "10s"
    assert "alerting" not in doc
    assert format_duration(0.5) == "500ms"
    with pytest.raises(InvalidInput, match="positive"):
        format_duration(0)


def test_non_loopback_target_is_refused_naming_it() -> None:
    settings = _settings(targets=(ScrapeTarget("payment-api", "10.0.0.7", 8000),))
    with pytest.raises(InvalidInput, match=r"'payment-api' \(10\.0\.0\.7:8000\).*not loopback"):
        render_prometheus_config(settings)


def test_allow_listed_host_is_accepted() -> None:
    settings = _settings(
        targets=(ScrapeTarget("payment-api", "10.0.0.7", 8000),),
        allowed_hosts=frozenset({"10.0.0.7"}),
    )
    doc = yaml.safe_load(render_prometheus_config(settings))
    assert doc["scrape_configs"][0]["static_configs"] == [{"targets": ["10.0.0.7:8000"]}]


def test_non_loopback_alertmanager_is_refused() -> None:
    with pytest.raises(InvalidInput, match="alertmanager"):
        render_prometheus_config(_settings(alertmanager_host="192.0.2.1"))


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ((ScrapeTarget("a", "127.0.0.1", 1), ScrapeTarget("a", "127.0.0.1", 2)), "repeated: a"),
        ((ScrapeTarget("a", "127.0.0.1", 70000),), "port"),
        ((ScrapeTarget("bad job", "127.0.0.1", 1),), "job name"),
        ((ScrapeTarget("a", "127.0.0.1", 1, metrics_path="metrics"),), "metrics path"),
    ],
)
def test_bad_targets_are_refused(targets: tuple[ScrapeTarget, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        render_prometheus_config(_settings(targets=targets))


def test_scrape_timeout_longer_than_interval_is_refused() -> None:
    with pytest.raises(InvalidInput, match="scrape timeout"):
        render_prometheus_config(_settings(scrape_interval_s=1.0, scrape_timeout_s=2.0))


def test_alertmanager_config_routes_to_the_webhook_fast() -> None:
    doc = yaml.safe_load(render_alertmanager_config(AlertmanagerSettings(webhook_url=WEBHOOK)))
    route = doc["route"]
    assert route["group_by"] == ["alertname", "method", "job"]
    assert route["group_wait"] == "1s"
    assert route["group_interval"] == "5s"
    (receiver,) = doc["receivers"]
    assert receiver["name"] == route["receiver"]
    assert receiver["webhook_configs"] == [{"url": WEBHOOK, "send_resolved": True}]


def test_non_loopback_webhook_is_refused_unless_allow_listed() -> None:
    url = "http://alerts.example.com/hook"
    with pytest.raises(InvalidInput, match=r"alerts\.example\.com"):
        render_alertmanager_config(AlertmanagerSettings(webhook_url=url))
    allowed = AlertmanagerSettings(webhook_url=url, allowed_hosts=frozenset({"alerts.example.com"}))
    assert url in render_alertmanager_config(allowed)
    with pytest.raises(InvalidInput, match="scheme"):
        render_alertmanager_config(AlertmanagerSettings(webhook_url="ftp://127.0.0.1/x"))


@pytest.mark.usefixtures("promtool")
def test_rendered_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    path = write_config(render_prometheus_config(_settings()), tmp_path / "prometheus.yml")
    output = check_config(path)
    assert "SUCCESS" in output


@pytest.mark.usefixtures("amtool")
def test_rendered_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    text = render_alertmanager_config(AlertmanagerSettings(webhook_url=WEBHOOK))
    path = write_config(text, tmp_path / "alertmanager.yml")
    output = check_alertmanager_config(path)
    assert "SUCCESS" in output
