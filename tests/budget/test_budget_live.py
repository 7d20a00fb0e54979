"""``paychaos budget`` on a real stack after a steady bounded load agrees with Prometheus'
own head series count and with the bytes the collector stored (within 10 %)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from paychaos.cli import main
from paychaos.loadgen import drive
from paychaos.stack.monitoring.promapi import PrometheusClient
from tests.live_stack import LiveStack, live_stack

pytestmark = pytest.mark.integration

CHECKOUTS = 400
SCRAPE_S = 1.0
SETTLE_S = SCRAPE_S + 5.0  # the command's default for this stack

# The collector's columns, as its documented measure counts them: text as UTF-8, and
# the stored numbers (8 bytes each). Recomputed here from the raw rows, not via SQL.
TEXT_COLUMNS = {
    "logs": (
        "level", "body", "service", "severity_text", "trace_id", "span_id", "attributes",
        "resource", "scope",
    ),
    "spans": (
        "trace_id", "span_id", "parent_span_id", "name", "service", "kind", "status",
        "status_message", "attributes", "resource", "scope", "events",
    ),
}  # fmt: skip
NUMBERS = {"logs": 2, "spans": 2}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, float]]:
    """A stack after a steady load of CHECKOUTS checkouts at 40/s; the load's start time."""
    with live_stack(
        tmp_path_factory.mktemp("budget-stack"),
        scrape_interval_s=SCRAPE_S,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
    ) as live:
        prom = PrometheusClient(live.urls["prometheus"])
        prom.wait_until('up{job="payment-api"}', lambda s: bool(s and s[0].value == 1), 60)
        started = time.time()
        result = asyncio.run(
            drive(
                live.urls["api"],
                total=CHECKOUTS,
                concurrency=8,
                rate_per_s=40,
                max_duration_s=60,
                request_timeout_s=5,
            )
        )
        assert sum(result.by_method_status.values()) == CHECKOUTS
        time.sleep(SETTLE_S + 2.0)  # the last scrape and telemetry batches are in
        yield live, started


def _budget(live: LiveStack, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    state = str(live.stack.cfg.state_dir)
    code = main(["--state-dir", state, "budget", "--window", "3m", "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return dict(json.loads(out.out))


def _stored_bytes(db: Path, table: str) -> tuple[int, int]:
    """Items and bytes of every row in ``table``, read straight from the SQLite file."""
    columns = TEXT_COLUMNS[table]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    finally:
        conn.close()
    size = sum(
        sum(len(v.encode()) for v in row if v is not None) + 8 * NUMBERS[table] for row in rows
    )
    return len(rows), size


def test_budget_agrees_with_prometheus_and_the_collector(
    loaded: tuple[LiveStack, float], capsys: pytest.CaptureFixture[str]
) -> None:
    live, _started = loaded
    report = _budget(live, capsys)
    head = PrometheusClient(live.urls["prometheus"]).query("prometheus_tsdb_head_series")
    head_series = sum(s.value for s in head)
    series = report["series"]["total"]
    assert series == pytest.approx(head_series, rel=0.10), (series, head_series)
    assert report["checkouts"] == pytest.approx(CHECKOUTS, rel=0.10)
    assert report["samples_per_s"] > 0 and report["dpm_per_series"] > 0

    db = live.stack.cfg.state_dir.resolve() / "collector.sqlite3"
    for signal, table in (("logs", "logs"), ("traces", "spans")):
        items, stored = _stored_bytes(db, table)
        measured = report["volumes"][signal]
        assert stored > 0 and items >= CHECKOUTS  # at least one span and one log per checkout
        assert measured["bytes"] == pytest.approx(stored, rel=0.10), (signal, measured, stored)
        per_checkout = measured["bytes_per_checkout"]
        assert per_checkout == pytest.approx(stored / CHECKOUTS, rel=0.15)

    projection = report["projection"]
    assert projection["fit"]["first_limit"] in ("logs", "traces")
    exploded = projection["explosion"]["fit"]
    assert exploded["first_limit"] == "series"
    assert exploded["largest_checkouts_per_day"] < projection["fit"]["largest_checkouts_per_day"]


def test_budget_table_has_units_and_the_answers(
    loaded: tuple[LiveStack, float], capsys: pytest.CaptureFixture[str]
) -> None:
    live, _started = loaded
    state = str(live.stack.cfg.state_dir)
    assert main(["--state-dir", state, "budget", "--window", "3m"]) == 0
    text = capsys.readouterr().out
    assert "largest store that fits:" in text and "first limit hit:" in text
    assert "Cardinality explosion: shop_payments_total" in text
    assert "B/checkout" in text and "series (" in text and "GB/month" in text
    assert "prometheus_tsdb_head_series" in text


def test_a_target_without_a_collector_says_what_was_not_measured(
    loaded: tuple[LiveStack, float], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    live, _started = loaded
    target = tmp_path / "tempo-loki.yaml"
    target.write_text(
        yaml.safe_dump(
            {
                "name": "grafana-stack",
                "checkout": {"url": live.urls["api"]},
                "signals": {
                    "prometheus": live.urls["prometheus"],
                    "traces": {"kind": "tempo", "url": "http://127.0.0.1:9"},
                    "logs": {"kind": "loki", "url": "http://127.0.0.1:9"},
                },
                "timing": {"scrape_interval_s": SCRAPE_S},
            }
        )
    )
    report = _budget(live, capsys, "--target", str(target))
    assert report["volumes"] == {"logs": None, "traces": None, "rum": None}
    assert "tempo" in report["unmeasured"]["traces"] and "loki" in report["unmeasured"]["logs"]
    assert report["projection"]["fit"]["unmeasured"] == ["logs", "traces"]


def test_no_checkouts_in_the_window_exits_1(
    loaded: tuple[LiveStack, float], capsys: pytest.CaptureFixture[str]
) -> None:
    live, started = loaded
    state = str(live.stack.cfg.state_dir)
    settle = f"{time.time() - started + 30:.0f}"  # a window that ends before the load began
    assert main(["--state-dir", state, "budget", "--window", "10s", "--settle-s", settle]) == 1
    captured = capsys.readouterr()
    assert "cannot project: no checkouts" in captured.out
    assert "nothing to project" in captured.err
