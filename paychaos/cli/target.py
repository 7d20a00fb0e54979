"""``paychaos target check|show``: what a target is, and what it can do.

::

    paychaos target check                         # the embedded stack `paychaos up` runs
    paychaos target check --target docker
    paychaos target check --target targets/staging.yaml
    paychaos target show --target targets/staging.yaml   # the validated target, secrets as references

``check`` probes every endpoint and actuator (read-only) and prints which
fault types and expectation types the target supports, and for each missing
one why: unreachable, not configured, wrong version, no permission, missing.
It exits 0 when every configured endpoint answered, 1 otherwise, 2 on a bad
target file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> dict[str, Handler]:
    from paychaos.cli import add_target_option

    target = subparsers.add_parser("target", help="check a target: what it can do, and why not")
    add_target_option(target)
    sub = target.add_subparsers(dest="target_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="probe every endpoint and actuator; capability table")
    add_target_option(check)
    check.add_argument("--json", action="store_true", help="the report as JSON")
    show = sub.add_parser("show", help="the validated target (secrets shown as references)")
    add_target_option(show)
    return {"target": _cmd_target}


def _cmd_target(args: argparse.Namespace) -> int:
    return {"check": _cmd_check, "show": _cmd_show}[args.target_command](args)


def _target(args: argparse.Namespace) -> Any:
    from paychaos.targets.resolve import plan_target

    return plan_target(getattr(args, "target", None), args.state_dir).target


def _cmd_show(args: argparse.Namespace) -> int:
    target = _target(args)
    print(json.dumps(target.model_dump(mode="json", exclude_none=True), indent=2))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from paychaos.targets.check import check_target, render

    report = check_target(_target(args))
    if args.json:
        print(
            json.dumps(
                {
                    "target": report.target.name,
                    "probes": {
                        k: {"status": p.status, "detail": p.detail}
                        for k, p in report.probes.items()
                    },
                    "capabilities": report.capabilities,
                    "faults": report.faults,
                    "expectations": report.expectations,
                },
                indent=2,
            )
        )
    else:
        print(render(report))
    return 0 if report.ok else 1
