"""Validation before anything is touched: parameters, durations, CLI bad input; the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos import cli
from paychaos.chaos.base import Fault
from paychaos.chaos.controller import ChaosController
from paychaos.chaos.journal import FaultEvent, Journal
from paychaos.chaos.params import parse_duration_s
from paychaos.chaos.registry import default_registry
from paychaos.chaos.target import FaultTarget, check_host
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault


def test_every_fault_has_params_with_units_a_description_and_a_max_ttl() -> None:
    registry = default_registry()
    assert {"db-latency", "db-outage", "gateway-timeout", "gateway-errors", "decline-spike"} <= set(
        registry.names()
    )
    assert {"gateway-latency", "kill", "pause", "restart", "memory-pressure", "app-leak"} <= set(
        registry.names()
    )
    for fault in registry:
        assert fault.description and 1 <= fault.max_duration_s <= 3600
        for spec in fault.param_specs():
            assert spec.kind in ("int", "float", "str"), spec
            if spec.kind != "str":
                assert spec.min is not None and spec.max is not None, spec


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("2m", 120.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["60", "", "s", "5 minutes", "-3s", "1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidFault, match="not a duration"):
        parse_duration_s(text)


def test_prepare_coerces_and_freezes() -> None:
    fault = default_registry().get("db-latency").prepare({"latency-ms": "300", "share": "0.5"}, 60)
    assert fault.params.latency_ms == 300 and fault.params.share == 0.5
    with pytest.raises(AttributeError):
        fault.params.latency_ms = 1


@pytest.mark.parametrize(
    ("name", "raw", "duration_s", "needle"),
    [
        ("db-latency", {"latency_ms": "0"}, 10, "latency_ms (--latency-ms) must be at least 1"),
        ("db-latency", {"latency_ms": "abc"}, 10, "latency_ms (--latency-ms) must be a whole"),
        ("db-latency", {"share": "1.5"}, 10, "share (--share) must be at most 1"),
        ("db-latency", {"latency_ms": 100, "jitter_ms": 200}, 10, "jitter_ms"),
        ("db-latency", {"bogus": 1}, 10, "unknown parameter 'bogus'"),
        ("db-latency", {}, None, "duration is required"),
        ("db-latency", {}, 7200, "duration (--for) must be between"),
        ("gateway-timeout", {"method": "cash"}, 10, "method (--method) must be one of"),
        ("gateway-errors", {"status": 501}, 10, "status"),
        ("pause", {"component": "nginx"}, 10, "component (--component) must be one of"),
        ("pause", {}, 1000, "between 1s and 900s"),
        ("memory-pressure", {"max_mb": -1}, 10, "max_mb (--max-mb) must be at least 1"),
    ],
)
def test_invalid_parameters_name_the_parameter(
    name: str, raw: dict[str, object], duration_s: float | None, needle: str
) -> None:
    with pytest.raises(InvalidFault) as info:
        default_registry().get(name).prepare(raw, duration_s)
    assert needle in str(info.value)


def test_unknown_fault() -> None:
    with pytest.raises(InvalidFault, match="unknown fault 'nope'; known faults: db-latency"):
        default_registry().get("nope")


def test_non_loopback_targets_are_refused_unless_allowed() -> None:
    check_host("http://127.0.0.1:8474")
    check_host("http://localhost:1")
    with pytest.raises(InvalidFault, match="not loopback"):
        check_host("http://10.1.2.3:8474")
    check_host("http://10.1.2.3:8474", allow_hosts=["10.1.2.3"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope", "--for", "5s"], "unknown fault 'nope'"),
        (["db-latency", "--latency-ms", "0", "--for", "5s"], "latency_ms (--latency-ms)"),
        (["db-latency", "--latency-ms", "90000", "--for", "5s"], "must be at most 60000"),
        (["db-latency", "--bogus", "1", "--for", "5s"], "unknown parameter 'bogus'"),
        (["db-latency", "--for", "10"], "'10' is not a duration"),
        (["db-latency", "--for", "2h"], "must be between"),
        (["db-latency"], "--for DURATION is required"),
        (["db-latency", "--latency-ms"], "--latency-ms needs a value"),
        (["gateway-timeout", "--method", "cash", "--for", "5s"], "--method"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--state-dir", str(tmp_path), "chaos", "inject", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "chaos").exists()  # nothing was touched, not even the journal


def test_cli_revert_needs_an_id_or_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "chaos", "revert"]) == 2
    assert "fault id or --all" in capsys.readouterr().err


def test_cli_list_shows_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["chaos", "list"]) == 0
    out = capsys.readouterr().out
    assert "--latency-ms" in out and "1..60000" in out and "--rate-mb-per-s" in out


class _Flaky(Fault):
    """A fault whose second step fails: the first must be rolled back."""

    name = "flaky"
    family = "test"
    description = "test double"
    metric_fault = "flaky"
    reverted: list[dict[str, object]] = []

    def target_label(self) -> str:
        return "test/flaky"

    def inject(self, ctx, applied):
        applied["step1"] = True
        raise RuntimeError("step 2 broke")

    def revert(self, target, applied):
        self.reverted.append(dict(applied))
        return {"undone": list(applied)}


def test_half_applied_fault_is_rolled_back_and_journaled_as_failed(tmp_path: Path) -> None:
    from paychaos.chaos.registry import FaultRegistry

    target = FaultTarget(bare_target(tmp_path))
    controller = ChaosController(target, registry=FaultRegistry([_Flaky]))
    fault = controller.prepare("flaky", {}, 5)
    with pytest.raises(FaultInjectionFailed, match="step 2 broke"):
        controller.inject(fault)
    assert _Flaky.reverted == [{"step1": True}]
    (entry,) = controller.journal.entries()
    assert entry.ended == "failed" and entry.end_details == {}
    assert controller.active() == []


def test_journal_folds_events_and_records_expiry(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "events.jsonl")
    journal.append(
        FaultEvent(ts=100.0, event="injected", id="f_1", fault="kill", ttl_s=10, expires_at=110)
    )
    journal.append(
        FaultEvent(ts=101.0, event="injected", id="f_2", fault="kill", ttl_s=10, expires_at=111)
    )
    journal.append(FaultEvent(ts=102.0, event="reverted", id="f_2", fault="kill"))
    assert [e.id for e in journal.active(105.0)] == ["f_1"]
    assert journal.record_expiries(120.0)[0].id == "f_1"
    first, second = journal.entries()
    assert (first.ended, first.ended_at) == ("expired", 110.0)
    assert (second.ended, second.ended_at) == ("reverted", 102.0)
    with (tmp_path / "events.jsonl").open("a") as fh:
        fh.write('{"torn": ')  # a killed writer's last line is skipped
    assert len(journal.entries()) == 2


def bare_target(tmp_path, **actuators):
    """A target with nothing but ``actuators`` (a checkout URL that is never called)."""
    from paychaos.contracts.target import Actuators, Checkout, Target

    return Target(
        name="bare",
        checkout=Checkout(url="http://127.0.0.1:9"),
        actuators=Actuators(**actuators),
        state_dir=tmp_path,
    )
