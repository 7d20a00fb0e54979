"""Helpers of the dashboard tests: the dashboards and every PromQL query in them."""

from __future__ import annotations

import json
from pathlib import Path

GRAFANA = Path(__file__).resolve().parents[2] / "stack" / "grafana"


def dashboards() -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation of every dashboard."""
    out = []
    for name, dash in dashboards().items():
        for panel in dash["panels"]:
            for target in panel["targets"]:
                out.append((f"{name}: {panel['title']} [{target['refId']}]", target["expr"]))
        for ann in dash["annotations"]["list"]:
            if "expr" in ann:
                out.append((f"{name}: annotation {ann['name']}", ann["expr"]))
    return out
