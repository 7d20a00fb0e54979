"""The alert rules load, their promtool unit tests pass, and every alert is covered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paychaos.contracts.errors import StackError
from paychaos.stack.monitoring.config import RULES_DIR
from paychaos.stack.monitoring.processes import check_rules, run_rule_tests

TESTS_DIR = RULES_DIR.parent / "tests"
COMPONENTS = {"api", "gateway", "database", "instance", "monitoring", "frontend"}
REQUIRED_ALERTS = {
    "PaymentErrorRatioHigh",
    "CheckoutLatencyP95High",
    "GatewayTimeouts",
    "DatabaseLatencyHigh",
    "DatabaseErrors",
    "ServiceDown",
    "PaymentMethodNoSuccess",
    "PaymentDeclineRatioHigh",
    "InstanceMemoryPressure",
    "InstanceOOMKill",
    "FrontendErrors",
    "ActiveSeriesGrowth",
    "ActiveSeriesSurge",
    "InstanceCPUThrottled",
    "TelemetryExportFailing",
    "PrometheusRestarted",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in _load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.usefixtures("promtool")
def test_promtool_check_rules_accepts_every_rule_file() -> None:
    output = check_rules(sorted(RULES_DIR.glob("*.yml")))
    assert "SUCCESS" in output


@pytest.mark.usefixtures("promtool")
def test_promtool_unit_tests_pass() -> None:
    test_files = sorted(TESTS_DIR.glob("*.yml"))
    assert test_files
    try:
        run_rule_tests(test_files)
    except StackError as exc:
        pytest.fail(f"promtool test rules failed:\n{exc}")


@pytest.mark.usefixtures("promtool")
def test_a_broken_rule_test_fails_with_promtools_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken_test.yml"
    broken.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES_DIR / "platform.yml")],
                "evaluation_interval": "5s",
                "tests": [
                    {
                        "interval": "5s",
                        "input_series": [{"series": 'up{job="gateway"}', "values": "0x40"}],
                        "alert_rule_test": [
                            {"eval_time": "2m", "alertname": "ServiceDown", "exp_alerts": []}
                        ],
                    }
                ],
            }
        )
    )
    with pytest.raises(StackError, match="ServiceDown"):
        run_rule_tests([broken])


def test_every_required_alert_exists_with_labels_and_annotations() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        labels = rule.get("labels", {})
        assert labels.get("severity") in {"critical", "warning"}, rule["alert"]
        component = labels.get("component", "")
        assert component in COMPONENTS or component == "{{ $labels.component }}", rule["alert"]
        annotations = rule.get("annotations", {})
        assert {"summary", "description"} <= set(annotations), rule["alert"]
        assert "{{" in annotations["summary"] + annotations["description"], rule["alert"]


def test_every_alert_has_a_firing_and_a_not_firing_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in sorted(TESTS_DIR.glob("*.yml")):
        for case in _load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alert_rules()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a not-firing test"


def test_seed_bottomk_query_is_unit_tested() -> None:
    exprs = [
        check["expr"]
        for path in sorted(TESTS_DIR.glob("*.yml"))
        for case in _load(path)["tests"]
        for check in case.get("promql_expr_test", [])
    ]
    seed = 'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
    assert seed in exprs
