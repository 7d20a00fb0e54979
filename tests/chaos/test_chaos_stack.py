"""Each fault family against a real embedded stack under load, and its signal.

One stack for the module (every component a real process on ephemeral
loopback ports), a bounded background checkout load, faults injected through
the :class:`ChaosController` (and the CLI), each reverted by the end of its test.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_testkit import (
    Load,
    RetryingCheckouts,
    cli_argv,
    controller_process,
    get_text,
    metric_values,
    read_injected_line,
    wait_for,
)

from paychaos.chaos import procs
from paychaos.chaos.controller import ChaosController
from paychaos.chaos.gateway import admin_for
from paychaos.chaos.journal import Journal, journal_path
from paychaos.chaos.proxy.client import ProxyClient
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.signals import SpanQuery
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.traffic.reconcile import reconcile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    cfg = StackConfig(
        state_dir=tmp_path_factory.mktemp("chaos-stack"),
        ports=StackPorts.auto(),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
        gateway_seed=5,
    )
    embedded = EmbeddedStack(cfg)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="module")
def load(stack: EmbeddedStack) -> Iterator[Load]:
    running = Load(stack.urls["api"]).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chaos(stack: EmbeddedStack) -> Iterator[ChaosController]:
    controller = ChaosController(FaultTarget(stack.target()))
    try:
        yield controller
    finally:
        controller.close()
        controller.sweep()


def _prom(stack: EmbeddedStack) -> PrometheusClient:
    return PrometheusClient(stack.urls["prometheus"])


def _scalar(stack: EmbeddedStack, expr: str) -> float | None:
    samples = _prom(stack).query(expr)
    return float(samples[0].value) if samples else None


def _slow_db_observations(stack: EmbeddedStack) -> float:
    """DB operations slower than 0.2 s so far (histogram count minus the le=0.2 bucket)."""
    url = stack.urls["api"] + "/metrics"
    buckets = metric_values(url, "shop_db_operation_duration_seconds_bucket")
    counts = metric_values(url, "shop_db_operation_duration_seconds_count")
    below = sum(v for k, v in buckets.items() if 'le="0.2"' in k)
    return sum(counts.values()) - below


def test_db_latency_shows_in_db_spans_and_histogram(
    stack: EmbeddedStack, load: Load, chaos: ChaosController
) -> None:
    slow_before = _slow_db_observations(stack)
    started = time.time()
    entry = chaos.inject(chaos.prepare("db-latency", {"latency_ms": 300}, 20))
    toxics = ProxyClient(stack.urls["proxy"]).list_toxics("postgres")
    assert [t.name for t in toxics] == [f"chaos-{entry.id}-latency"]
    assert toxics[0].ttl_s == 20
    assert wait_for(lambda: _slow_db_observations(stack) - slow_before >= 5, 20)
    collector = CollectorClient(stack.urls["collector"])
    spans = wait_for(
        lambda: collector.find_spans(
            SpanQuery(service="payment-api", kind="client", since_unix_s=started, limit=200)
        ),
        15,
    )
    db_spans = [s for s in spans if "db.operation.name" in s.attributes]
    assert db_spans and max(s.duration_ms for s in db_spans) >= 290
    gauge = 'chaos_fault_active{fault="latency",target="proxy/postgres"}'
    assert wait_for(lambda: _scalar(stack, gauge) == 1.0, 10)
    chaos.revert(entry.id)
    assert ProxyClient(stack.urls["proxy"]).list_toxics("postgres") == []
    assert Journal(journal_path(stack.cfg.state_dir)).get(entry.id).ended == "reverted"  # type: ignore[union-attr]


def test_paypal_timeouts_show_as_504_while_other_methods_stay_healthy(
    stack: EmbeddedStack, load: Load, chaos: ChaosController
) -> None:
    entry = chaos.inject(chaos.prepare("gateway-timeout", {"method": "paypal"}, 30))
    since = time.time()
    assert wait_for(lambda: load.codes_since(since)[("paypal", 504)] >= 3, 20)
    assert wait_for(lambda: load.codes_since(since)[("visa", 201)] >= 3, 20)
    codes = load.codes_since(since)
    assert codes[("visa", 504)] == 0 and codes[("paypal", 201)] == 0
    expr = 'sum(increase(shop_payments_total{method="paypal",status="error"}[1m]))'
    assert wait_for(lambda: (_scalar(stack, expr) or 0) > 0, 15)
    behaviours = admin_for(chaos.target).list()
    assert [b["id"] for b in behaviours] == [entry.details["behaviour_id"]]
    chaos.revert(entry.id)
    assert admin_for(chaos.target).list() == []


def test_pause_shows_up_zero_and_resumes_by_itself(
    stack: EmbeddedStack, chaos: ChaosController
) -> None:
    entry = chaos.inject(chaos.prepare("pause", {"component": "gateway"}, 5))
    pid = entry.details["pid"]
    assert procs.state(pid) == "T"
    assert wait_for(lambda: _scalar(stack, 'up{job="gateway"}') == 0.0, 8)
    active = metric_values(stack.urls["instance_metrics"], "chaos_fault_active")
    assert active['{fault="process_pause",target="process/gateway"}'] == 1.0
    # not reverted by us: the detached watchdog resumes it at the deadline
    assert wait_for(lambda: procs.state(pid) in ("S", "R"), 10)
    assert wait_for(lambda: _scalar(stack, 'up{job="gateway"}') == 1.0, 10)
    journal = Journal(journal_path(stack.cfg.state_dir))
    assert wait_for(lambda: journal.get(entry.id).ended == "expired", 5)  # type: ignore[union-attr]
    active = metric_values(stack.urls["instance_metrics"], "chaos_fault_active")
    assert active['{fault="process_pause",target="process/gateway"}'] == 0.0


def test_kill_is_restarted_by_the_supervisor_and_counted(
    stack: EmbeddedStack, chaos: ChaosController
) -> None:
    url = stack.urls["instance_metrics"]
    key = '{component="collector"}'
    before = metric_values(url, "paychaos_component_restarts_total")[key]
    old_pid = stack.supervisor.pid_of("collector")
    chaos.inject(chaos.prepare("kill", {"component": "collector"}, 5))
    assert wait_for(
        lambda: metric_values(url, "paychaos_component_restarts_total")[key] > before, 10
    )
    assert wait_for(lambda: stack.supervisor.pid_of("collector") != old_pid, 5)
    expr = 'max_over_time(paychaos_component_restarts_total{component="collector"}[1m])'
    assert wait_for(lambda: (_scalar(stack, expr) or 0) > before, 10)


def _healthy(stack: EmbeddedStack, component: str) -> bool:
    return any(r["name"] == component and r["healthy"] for r in stack.supervisor.status())


@pytest.mark.parametrize("component", ["api", "gateway"])
def test_restart_under_checkouts_loses_and_doubles_nothing(
    stack: EmbeddedStack, chaos: ChaosController, tmp_path: Path, component: str
) -> None:
    """``restart`` (graceful SIGTERM) of the payment API, or of the gateway behind it, while
    careful clients pay: a new process, the restart counted, healthy again, and every
    checkout settled exactly once (the gateway's ledger reloaded across its restart)."""
    url = stack.urls["instance_metrics"]
    key = f'{{component="{component}"}}'
    before = metric_values(url, "paychaos_component_restarts_total")[key]
    old_pid = stack.supervisor.pid_of(component)
    ledger = tmp_path / "ledger-restart.jsonl"
    clients = RetryingCheckouts(stack.urls["api"], ledger, threads=3, per_thread=30).start()
    assert wait_for(lambda: len(clients.attempts) >= 6, 20)  # paying before the signal
    injected_at = time.time()
    entry = chaos.inject(chaos.prepare("restart", {"component": component}, 10))
    assert entry.details["pid"] == old_pid
    assert wait_for(
        lambda: metric_values(url, "paychaos_component_restarts_total")[key] == before + 1, 15
    )
    new_pid = stack.supervisor.pid_of(component)
    assert new_pid not in (None, old_pid)
    assert wait_for(lambda: _healthy(stack, component), 15)
    healthy_at = time.time()
    assert get_text(stack.urls["api"] + "/healthz")
    assert clients.join(60), "the checkouts did not finish in 60 s"
    # the restart really crossed the checkouts: attempts were in flight or sent while the
    # component went down and came back (they waited, or failed and were retried), and after
    crossing = [a for a in clients.attempts if a[0] <= healthy_at and a[1] >= injected_at]
    assert crossing, "no checkout attempt met the restart"
    assert any(sent > healthy_at for sent, *_ in clients.attempts)
    report = reconcile([ledger], stack.urls["api"], stack.urls["gateway"], settle_timeout_s=20)
    assert report.checkouts == 90, report.summary()
    assert report.ok and report.unknown == 0 and report.unsettled == 0, report.summary()
    assert not report.lost and not report.double_charges, report.to_json()
    reverted = chaos.revert(entry.id)  # nothing to undo: it says the component runs again
    assert reverted.end_details == {"running_again": True, "new_pid": new_pid}
    assert metric_values(url, "paychaos_component_restarts_total")[key] == before + 1


def test_memory_pressure_shows_in_instance_memory(
    stack: EmbeddedStack, chaos: ChaosController
) -> None:
    url = stack.urls["instance_metrics"]
    before = metric_values(url, "instance_memory_used_bytes")[""]
    params = {"rate_mb_per_s": 400, "max_mb": 160}
    entry = chaos.inject(chaos.prepare("memory-pressure", params, 15))
    assert wait_for(
        lambda: metric_values(url, "instance_memory_used_bytes")[""] - before > 120 * 2**20, 10
    )
    chaos.revert(entry.id)
    assert not procs.same_process(entry.details["pid"], entry.details["starttime"])


def test_memory_pressure_past_its_limit_is_a_real_oom_kill(
    stack: EmbeddedStack, chaos: ChaosController
) -> None:
    params = {"rate_mb_per_s": 400, "max_mb": 200, "limit_mb": 64}
    entry = chaos.inject(chaos.prepare("memory-pressure", params, 20))
    cgroup = Path(entry.details["cgroup"])
    assert cgroup.name.startswith("paychaos-hog-")
    journal = Journal(journal_path(stack.cfg.state_dir))
    # the kernel kills the hog; the watchdog reads the cgroup's counter and removes it
    ended = wait_for(lambda: (e := journal.get(entry.id)) and e.ended and e, 20)
    assert ended, "the hog was not OOM-killed"
    assert ended.end_details["oom_kills"] >= 1
    assert wait_for(lambda: not cgroup.exists(), 10)


def test_cli_inject_status_events_revert(stack: EmbeddedStack, tmp_path: Path) -> None:
    state = stack.cfg.state_dir
    out = subprocess.run(
        cli_argv(
            state,
            "inject",
            "decline-spike",
            "--method",
            "amex",
            "--decline-rate",
            "1",
            "--for",
            "30s",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    fault_id = out.split()[1].rstrip(":")
    status = subprocess.run(
        cli_argv(state, "status"), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert fault_id in status and "decline-spike" in status and "gateway/amex" in status
    subprocess.run(
        cli_argv(state, "revert", "--all"), capture_output=True, text=True, timeout=60, check=True
    )
    status = subprocess.run(
        cli_argv(state, "status"), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "no fault in force" in status
    events = subprocess.run(
        cli_argv(state, "events"), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert f"injected  {fault_id}" in events and f"reverted  {fault_id}" in events
    # bad input against the running stack: exit 2, nothing injected
    bad = subprocess.run(
        cli_argv(state, "inject", "db-latency", "--latency-ms", "-5", "--for", "10s"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "latency_ms" in bad.stderr and "Traceback" not in bad.stderr
    assert ProxyClient(stack.urls["proxy"]).list_toxics("postgres") == []


def test_sigkilled_controllers_leave_nothing_injected_after_the_ttl(stack: EmbeddedStack) -> None:
    state = stack.cfg.state_dir
    ttl = "6s"
    with (
        controller_process(state, "db-latency", "--latency-ms", "50", "--for", ttl) as db,
        controller_process(state, "gateway-timeout", "--method", "paypal", "--for", ttl) as gw,
        controller_process(state, "pause", "--component", "alertmanager", "--for", ttl) as pause,
        controller_process(state, "memory-pressure", "--max-mb", "32", "--for", ttl) as hog,
    ):
        ids = {}
        for name, proc in (("db", db), ("gw", gw), ("pause", pause), ("hog", hog)):
            ids[name] = read_injected_line(proc).split()[1].rstrip(":")
        journal = Journal(journal_path(state))
        entries = {name: journal.get(fid) for name, fid in ids.items()}
        assert ProxyClient(stack.urls["proxy"]).list_toxics("postgres")
        assert admin_for(FaultTarget(stack.target())).list()
        paused = entries["pause"].details  # type: ignore[union-attr]
        assert procs.state(paused["pid"]) == "T"
        hog_d = entries["hog"].details  # type: ignore[union-attr]
        assert procs.same_process(hog_d["pid"], hog_d["starttime"])
        for proc in (db, gw, pause, hog):
            proc.send_signal(signal.SIGKILL)
        for proc in (db, gw, pause, hog):
            proc.wait(timeout=10)
    # the hog dies with its controller (PR_SET_PDEATHSIG)
    assert wait_for(lambda: not procs.same_process(hog_d["pid"], hog_d["starttime"]), 5)
    # everything else ends at its TTL, held by the proxy, the gateway and the watchdog
    assert wait_for(lambda: ProxyClient(stack.urls["proxy"]).list_toxics("postgres") == [], 15)
    assert wait_for(lambda: admin_for(FaultTarget(stack.target())).list() == [], 10)
    assert wait_for(lambda: procs.state(paused["pid"]) in ("S", "R"), 10)
    assert wait_for(
        lambda: not procs.same_process(paused["watch_pid"], paused["watch_starttime"]), 5
    )
    assert wait_for(
        lambda: not procs.same_process(hog_d["watch_pid"], hog_d["watch_starttime"]), 10
    )
    assert wait_for(lambda: ChaosController(FaultTarget(stack.target())).active() == [], 5)


def test_app_leak_grows_the_api_and_is_released(
    stack: EmbeddedStack, chaos: ChaosController
) -> None:
    url = stack.urls["api"] + "/metrics"
    before = metric_values(url, "process_resident_memory_bytes")[""]
    entry = chaos.inject(chaos.prepare("app-leak", {"size_mb": 96}, 20))
    grown = metric_values(url, "process_resident_memory_bytes")[""]
    assert grown - before > 80 * 2**20
    reverted = chaos.revert(entry.id)
    assert reverted.ended == "reverted" and reverted.end_details == {"released": True}


def test_locust_chaos_tab_lists_injects_and_reverts(stack: EmbeddedStack) -> None:
    import json
    import os
    import sys

    probe = Path(__file__).with_name("locust_ui_probe.py")
    env = {**os.environ, "PAYCHAOS_STATE_DIR": str(stack.cfg.state_dir)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["installed"] and out["faults_listed"]
    assert out["script_on_index"] and out["script_status"] == 200
    assert out["old_page_leads_to_tab"] == "/?tab=paychaos-chaos"
    assert out["bad_status"] == 400 and "not a duration" in out["bad_error"]
    assert not out["bad_error"].startswith("InvalidFault")
    assert out["inject_status"] == 200
    assert [row["fault"] for row in out["active"]] == ["decline-spike"]
    assert out["tab_rows"] and out["tab_rows"][0][0]["target"] == "gateway/crypto"
    assert out["tabs"][-1]["key"] == "paychaos-chaos"
    assert out["revert_status"] == 200 and out["active_after"] == []
    assert admin_for(FaultTarget(stack.target())).list() == []
