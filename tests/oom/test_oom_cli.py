"""oom-demo's flags: no multiplier unless asked, and then it heads every output; the
--until-kill run refused where it does not apply (exit 2, the flag named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos.cli.oom import headline_of, main
from paychaos.oom.runner import RunSettings, TrafficPlan


def test_no_multiplier_by_default_and_a_multiplier_heads_the_output() -> None:
    plain = headline_of(RunSettings())
    assert "traffic as really sent, no multiplier" in plain and "MULTIPLIER" not in plain
    loud = headline_of(RunSettings(traffic_factor=16.0))
    assert "MULTIPLIER: modelled components see 16 x the traffic sent" in loud
    until = headline_of(
        RunSettings(plan=TrafficPlan.explosion(120.0), bad_deploy_at_s=8.0, until_kill=True)
    )
    assert until.startswith("bad deploy (per-order label) at 8s;")
    assert "sale until the first OOM kill, or the series of a killed layout (at most 120s" in until


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--until-kill"], "--until-kill applies to the --bad-deploy-at run only"),
        (
            ["--until-kill", "--credits", "--bad-deploy-at", "1"],
            "--until-kill applies to the --bad-deploy-at run only (not --credits",
        ),
        (["--dashboard-every", "5"], "--dashboard-every applies to the --bad-deploy-at run only"),
        (["--bad-deploy-at", "70", "--quick"], "--bad-deploy-at 70: must come before the sale"),
    ],
)
def test_misplaced_flags_are_refused_by_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["oom-demo", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
