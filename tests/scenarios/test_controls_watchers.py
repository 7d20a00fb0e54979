"""Negative controls of the scenarios about the watchers themselves (issue #12).

Each loads the real scenario file, takes its key expectation, and shows that it
holds with the key signal present and fails with the signal removed:

- ``telemetry-pipeline-down``: TelemetryExportFailing (the real rule, evaluated by
  promtool) fires on the series a real payment API's SDK exports after failing to
  deliver spans to a dead collector, and does not fire without them.
- ``prometheus-kill``: PrometheusRestarted and the scenario's start-time expectation
  hold on a Prometheus whose TSDB kept the samples from before its crash, and fail on
  one whose TSDB did not survive it (the change of start time cannot be seen).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from paychaos.contracts.errors import StackError
from paychaos.contracts.scenario import AlertExpectation, MetricExpectation, Scenario, compare
from paychaos.scenario import load_scenario
from paychaos.stack.monitoring.config import RULES_DIR
from paychaos.stack.monitoring.processes import find_binary, run_rule_tests
from paychaos.stack.sdk_metrics import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, SdkMetricsCollector

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "127.0.0.1:8000"


def _scenario(name: str) -> Scenario:
    return load_scenario(REPO / "scenarios" / f"{name}.yaml").scenario


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exposition_after_failed_export(enabled: bool) -> list[tuple[str, dict[str, str], float]]:
    """What the API's /metrics says about its span exports after a real OTLP exporter
    tried to deliver 5 spans to a collector that is not there."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    sdk = SdkMetricsCollector()
    registry = CollectorRegistry()
    registry.register(sdk)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{_closed_port()}/v1/traces",
        timeout=0.5,
        meter_provider=sdk.meter_provider,
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        for _ in range(5):
            with provider.get_tracer("control").start_as_current_span("POST /api/checkout"):
                pass
        text = generate_latest(registry).decode()
    finally:
        provider.shutdown()
        sdk.shutdown()
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("otel_sdk_exporter_span_exported"):
                samples.append((sample.name, dict(sample.labels), sample.value))
    assert enabled == bool(samples)
    return samples


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if v)
    return f"{name}{{{inner}}}"


def _rule_without_annotations(tmp_path: Path) -> Path:
    """The real rule file with the annotations left out (the control tests the expression
    and labels; the annotations' wording has its own promtool tests)."""
    doc = yaml.safe_load((RULES_DIR / "telemetry.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "telemetry.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _promtool_case(
    tmp_path: Path,
    samples: list[tuple[str, dict[str, str], float]],
    exp: AlertExpectation,
    expect_firing: bool,
) -> Path:
    """A promtool test: 2 minutes of the API's span export counters (delivered for one
    minute, then each exported span failing like ``samples``), the alert expected or not."""
    ok_labels: dict[str, str] = {}
    failed: list[dict[str, str]] = []
    for _name, labels, _value in samples:
        labels = {**labels, "job": "payment-api", "instance": INSTANCE}
        if labels.get("error_type"):
            failed.append(labels)
        else:
            ok_labels = labels
    if not ok_labels and failed:  # the delivered series, as it looked before the collector hung
        ok_labels = {k: v for k, v in failed[0].items() if k != "error_type"}
    name = "otel_sdk_exporter_span_exported_total"
    # the API is scraped all along; it says nothing of its exports unless its SDK counts them
    series: list[dict[str, Any]] = [
        {"series": _series("up", {"job": "payment-api", "instance": INSTANCE}), "values": "1x24"}
    ]
    if ok_labels:
        series.append({"series": _series(name, ok_labels), "values": "0+250x12 3000x12"})
    series += [{"series": _series(name, f), "values": "_x12 0+250x12"} for f in failed]
    labels = {"severity": "critical", "component": "monitoring", "instance": INSTANCE}
    labels.update(exp.labels)
    case = {
        "rule_files": [str(_rule_without_annotations(tmp_path))],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": exp.alert,
                        "exp_alerts": [{"exp_labels": labels}] if expect_firing else [],
                    }
                ],
            }
        ],
    }
    path = tmp_path / f"case-{expect_firing}.yml"
    path.write_text(yaml.safe_dump(case))
    return path


def test_telemetry_pipeline_down_alert_needs_the_sdks_failure_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_binary("promtool")  # missing: a failure naming the package, never a skip
    scenario = _scenario("telemetry-pipeline-down")
    alert = next(
        e
        for e in scenario.expectations
        if isinstance(e, AlertExpectation) and e.alert == "TelemetryExportFailing"
    )
    metric = next(
        e
        for e in scenario.expectations
        if isinstance(e, MetricExpectation) and "otel_sdk_exporter_span_exported_total" in e.query
    )
    assert 'error_type!=""' in metric.query and not alert.absent

    monkeypatch.setenv(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "true")
    present = _exposition_after_failed_export(enabled=True)
    assert any(labels.get("error_type") for _n, labels, _v in present)
    # the signal present: the alert fires (and promtool agrees that it does)
    run_rule_tests([_promtool_case(tmp_path, present, alert, expect_firing=True)])

    # the signal removed (an API whose SDK does not count its failed exports):
    # the scenario's key expectation cannot hold
    monkeypatch.delenv(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED)
    assert os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) is None
    removed = _exposition_after_failed_export(enabled=False)
    run_rule_tests([_promtool_case(tmp_path, removed, alert, expect_firing=False)])
    with pytest.raises(StackError, match=alert.alert):
        run_rule_tests([_promtool_case(tmp_path, removed, alert, expect_firing=True)])


def _alert(scenario: Scenario, name: str) -> AlertExpectation:
    return next(
        e for e in scenario.expectations if isinstance(e, AlertExpectation) and e.alert == name
    )


def _metric(scenario: Scenario, contains: str) -> MetricExpectation:
    return next(
        e for e in scenario.expectations if isinstance(e, MetricExpectation) and contains in e.query
    )


def test_prometheus_kill_is_seen_only_through_a_tsdb_that_survived_the_crash(
    tmp_path: Path,
) -> None:
    find_binary("promtool")
    scenario = _scenario("prometheus-kill")
    alert = _alert(scenario, "PrometheusRestarted")
    started = _metric(scenario, "process_start_time_seconds")
    instance = "127.0.0.1:9090"
    # killed after 60 s, back at 75 s with a new start time; without the volume (removed)
    # the samples from before the crash are gone
    histories = {"survived": "1000x12 _x2 1074x24", "removed": "_x14 1074x24"}
    labels = {"severity": "warning", "component": "monitoring", "instance": instance}
    labels.update({"job": "prometheus", **alert.labels})

    def case(history: str, *, firing: bool, changes: float) -> Path:
        doc = {
            "rule_files": [str(_rule_without_annotations(tmp_path))],
            "evaluation_interval": "5s",
            "tests": [
                {
                    "interval": "5s",
                    "input_series": [
                        {
                            "series": _series(
                                "process_start_time_seconds",
                                {"job": "prometheus", "instance": instance},
                            ),
                            "values": history,
                        }
                    ],
                    "alert_rule_test": [
                        {
                            "eval_time": "90s",
                            "alertname": alert.alert,
                            "exp_alerts": [{"exp_labels": labels}] if firing else [],
                        }
                    ],
                    "promql_expr_test": [
                        {
                            "expr": started.query,
                            "eval_time": "90s",
                            "exp_samples": [
                                {
                                    "labels": _series(
                                        "", {"job": "prometheus", "instance": instance}
                                    ),
                                    "value": changes,
                                }
                            ],
                        }
                    ],
                }
            ],
        }
        path = tmp_path / f"prometheus-{history.replace(' ', '_')}-{firing}.yml"
        path.write_text(yaml.safe_dump(doc))
        return path

    # the key signal present: the alert fires and the start time changed once
    run_rule_tests([case(histories["survived"], firing=True, changes=1)])
    assert compare(1, started.op, started.value)
    # removed: no change to see, the alert stays quiet, and the expectations fail
    run_rule_tests([case(histories["removed"], firing=False, changes=0)])
    assert not compare(0, started.op, started.value)
    with pytest.raises(StackError, match=alert.alert):
        run_rule_tests([case(histories["removed"], firing=True, changes=0)])
