"""``paychaos chaos ...``: list, inject, status, revert and show the events of faults.

They act on a target (``--target``): by default the embedded stack that
``paychaos up`` started (``--state-dir``, default ``.paychaos``); ``--target
docker`` for the Docker stack; a target file for a deployment paychaos did not
start (its Toxiproxy, gateway admin API, containers or processes)::

    paychaos chaos list [--target FILE]     # marks what the target cannot take
    paychaos chaos inject db-latency --latency-ms 300 --for 60s
    paychaos chaos inject gateway-timeout --method paypal --for 2m --wait
    paychaos chaos status
    paychaos chaos revert f_1a2b3c4d        # or: --all
    paychaos chaos events [--json]

``inject`` validates everything first (fault, parameters, duration: exit 2 and
one line naming the parameter, nothing touched), injects, and returns: the
fault's TTL is held by its target (proxy, gateway, watchdog, hog). With
``--wait`` it stays until the TTL and reverts on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from paychaos.contracts.errors import InvalidFault

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> dict[str, Handler]:
    from paychaos.cli import add_target_option

    chaos = subparsers.add_parser("chaos", help="inject and revert faults in the running stack")
    chaos.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS)
    add_target_option(chaos)
    sub = chaos.add_subparsers(dest="chaos_command", required=True, metavar="ACTION")
    add_target_option(sub.add_parser("list", help="every fault with its parameters"))
    inject = sub.add_parser(
        "inject",
        help="inject a fault: NAME [--param value ...] --for 60s [--wait]",
        description="Inject a fault. Parameters are the fault's (see: paychaos chaos list); "
        "--for DURATION (500ms, 60s, 2m) is required; --wait stays and reverts at the end; "
        "--allow-host HOST permits a non-loopback target.",
    )
    inject.add_argument("fault", metavar="NAME")
    inject.add_argument("args", nargs=argparse.REMAINDER, metavar="--param value")
    status = sub.add_parser("status", help="faults in force, with their remaining TTL")
    add_target_option(status)
    status.add_argument("--json", action="store_true")
    revert = sub.add_parser("revert", help="revert a fault by id, or --all")
    add_target_option(revert)
    revert.add_argument("id", nargs="?")
    revert.add_argument("--all", action="store_true")
    events = sub.add_parser("events", help="the event log of injections and reverts")
    add_target_option(events)
    events.add_argument("--json", action="store_true")
    return {"chaos": _cmd_chaos}


def _cmd_chaos(args: argparse.Namespace) -> int:
    handlers: dict[str, Handler] = {
        "list": _cmd_list,
        "inject": _cmd_inject,
        "status": _cmd_status,
        "revert": _cmd_revert,
        "events": _cmd_events,
    }
    return handlers[args.chaos_command](args)


# -- list ------------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    from paychaos.chaos.catalog import full_registry
    from paychaos.contracts.target import missing

    offers = _offers(args)
    for fault in full_registry():
        print(f"{fault.name:<16} [{fault.family}] {fault.description}")
        if offers is not None:
            needs = (
                fault.prepare({}, fault.max_duration_s).requires() if _no_required(fault) else []
            )
            gaps = missing(offers, needs)
            if gaps:
                print(f"{'':<18}NOT on this target: lacks {', '.join(gaps)}")
        print(f"{'':<18}--for DURATION   required TTL, at most {fault.max_duration_s:.0f}s")
        for spec in fault.param_specs():
            default = f"default {spec.default}"
            print(
                f"{'':<18}{spec.flag:<16} {spec.kind:<5} {default:<17} "
                f"{spec.describe_range():<22} {spec.help}"
            )
    return 0


# -- inject ----------------------------------------------------------------------------
def parse_inject_args(
    tokens: Sequence[str],
) -> tuple[dict[str, str], str | None, bool, list[str], str | None]:
    """``--name value`` pairs → (params, --for, --wait, --allow-host, --target); raises InvalidFault."""
    params: dict[str, str] = {}
    duration: str | None = None
    wait = False
    allow: list[str] = []
    target: str | None = None
    items = list(tokens)
    i = 0
    while i < len(items):
        token = items[i]
        if not token.startswith("--") or token == "--":
            raise InvalidFault(f"unexpected argument {token!r}: parameters are --name value")
        name, eq, value = token[2:].partition("=")
        if name == "wait":
            if eq:
                raise InvalidFault("--wait takes no value")
            wait = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(items) or items[i + 1].startswith("--"):
                raise InvalidFault(f"--{name} needs a value")
            value = items[i + 1]
            i += 1
        i += 1
        if name == "for":
            duration = value
        elif name == "allow-host":
            allow.append(value)
        elif name == "target":
            target = value
        elif name.replace("-", "_") in params:
            raise InvalidFault(f"--{name} is given twice")
        else:
            params[name.replace("-", "_")] = value
    return params, duration, wait, allow, target


def _cmd_inject(args: argparse.Namespace) -> int:
    from paychaos.chaos.catalog import full_registry
    from paychaos.chaos.controller import ChaosController, signals_raise
    from paychaos.chaos.params import parse_duration_s

    # 1. validate everything; nothing is touched before this passes
    fault_cls = full_registry().get(args.fault)
    params, duration_text, wait, allow, target_ref = parse_inject_args(args.args)
    if target_ref is not None:
        args.target = target_ref
    if duration_text is None:
        raise InvalidFault(
            f"{fault_cls.name}: --for DURATION is required (every fault has a TTL, "
            f"at most {fault_cls.max_duration_s:.0f}s), e.g. --for 60s"
        )
    duration_s = parse_duration_s(duration_text, what="--for")
    fault = fault_cls.prepare(params, duration_s)
    # 2. the target must offer what the fault needs; then inject
    target, registry = _fault_target(args, allow)
    _check_capabilities(fault, target)
    fault = registry.get(fault.name).prepare(fault.param_dict(), duration_s)
    if not wait:
        entry = ChaosController(target, registry=registry, detached=True).inject(fault)
        _print_injected(entry.id, fault.describe(), entry.target, entry.expires_at)
        print(
            f"  the target ends it by itself; revert earlier with: paychaos chaos revert {entry.id}"
        )
        return 0
    with signals_raise(), ChaosController(target, registry=registry) as controller:
        entry = controller.inject(fault)
        _print_injected(entry.id, fault.describe(), entry.target, entry.expires_at)
        print("  waiting for the TTL (Ctrl-C reverts now) ...", flush=True)
        while time.time() < entry.expires_at:
            time.sleep(min(0.5, max(0.0, entry.expires_at - time.time())))
    print(f"{entry.id} ended")
    return 0


def _print_injected(fault_id: str, what: str, target: str, expires_at: float) -> None:
    until = time.strftime("%H:%M:%S", time.localtime(expires_at))
    print(f"injected {fault_id}: {what} on {target} (until {until})", flush=True)


# -- status / events / revert ----------------------------------------------------------
def _session(args: argparse.Namespace) -> Any:
    from paychaos.targets.resolve import plan_target

    return plan_target(getattr(args, "target", None), args.state_dir).open()


def _offers(args: argparse.Namespace) -> dict[str, str] | None:
    """The target's capabilities, or None when ``list`` was asked without a target."""
    from paychaos.contracts.errors import StackError

    try:
        return dict(_session(args).target.capabilities())
    except StackError:
        if getattr(args, "target", None):
            raise
        return None  # no stack runs: list every fault without marks


def _no_required(fault: Any) -> bool:
    """True when the fault validates with its defaults (so its needs can be read)."""
    from paychaos.contracts.errors import InvalidFault as Invalid

    try:
        fault.prepare({}, fault.max_duration_s)
    except Invalid:
        return False
    return True


def _fault_target(args: argparse.Namespace, allow: Sequence[str] = ()) -> tuple[Any, Any]:
    """The target's actuators for faults, and the registry whose faults act on it."""
    from paychaos.chaos.catalog import registry_for
    from paychaos.chaos.target import FaultTarget

    session = _session(args)
    target = FaultTarget(
        session.target, state_dir=session.state_dir, allow_hosts=(*session.allow_hosts, *allow)
    )
    return target, registry_for(session.target)


def _check_capabilities(fault: Any, target: Any) -> None:
    from paychaos.chaos.catalog import ALIASES
    from paychaos.contracts.errors import Unsupported
    from paychaos.contracts.target import missing

    needs = fault.requires()
    if fault.name in ALIASES:
        component = fault.param_dict().get("component")
        needs = [f"process.{component}|container.{component}"]
    gaps = missing(target.target.capabilities(), needs)
    if gaps:
        raise Unsupported(
            f"{fault.name}: target {target.name} lacks "
            + ", ".join(g.replace("|", " or ") for g in gaps)
            + " (see: paychaos target check)",
            tuple((fault.name, g) for g in gaps),
        )


def _controller(args: argparse.Namespace) -> Any:
    from paychaos.chaos.controller import ChaosController

    target, registry = _fault_target(args)
    return ChaosController(target, registry=registry)


def _journal(args: argparse.Namespace) -> Any:
    from paychaos.chaos.journal import Journal

    target, _registry = _fault_target(args)
    return Journal.for_state_dir(target.state_dir)


def _cmd_status(args: argparse.Namespace) -> int:
    from paychaos.chaos.exporter import journal_active

    journal = _journal(args)
    journal.record_expiries()
    now = time.time()
    active = journal.active(now)
    held = {e.id for e in journal_active(journal, now)}
    rows = [
        e.to_dict(now)
        for e in active
        if e.target.startswith(("proxy/", "gateway/")) or e.id in held
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no fault in force")
        return 0
    for row in rows:
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        print(
            f"{row['id']}  {row['fault']:<16} {row['target']:<18} "
            f"{row['remaining_s']:>6.0f}s left  {params}"
        )
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    journal = _journal(args)
    journal.record_expiries()
    events = journal.events()
    if args.json:
        for ev in events:
            print(ev.to_json())
        return 0
    if not events:
        print("no chaos events yet")
    for ev in events:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev.ts))
        extra = f"  ttl {ev.ttl_s:g}s" if ev.event == "injected" else ""
        message = f"  {ev.message}" if ev.message else ""
        print(f"{stamp}  {ev.event:<9} {ev.id}  {ev.fault:<16} {ev.target}{extra}{message}")
    return 0


def _cmd_revert(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.all):
        raise InvalidFault("give a fault id or --all (see: paychaos chaos status)")
    controller = _controller(args)
    if args.all:
        reverted = controller.revert_all()
        for entry in reverted:
            print(f"{entry.id} {entry.fault} on {entry.target}: {entry.ended}")
        print(f"reverted {len(reverted)} fault(s); proxy toxics and gateway behaviours swept")
        return 0
    entry = controller.revert(args.id)
    print(f"{entry.id} {entry.fault} on {entry.target}: {entry.ended}")
    return 0
