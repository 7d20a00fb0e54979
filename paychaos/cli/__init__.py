"""The ``paychaos`` command line.

Exit codes: 0 success, 1 a failure (a check did not hold, a component died),
2 invalid input (bad flag, scenario or fault), 3 a missing dependency,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from paychaos.contracts.errors import InvalidInput, PaychaosError

DEFAULT_STATE_DIR = Path(".paychaos")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (its default), never a traceback."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _mix(text: str) -> dict[str, float]:
    """``visa=45,paypal=30,crypto=15,amex=10``."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in ("visa", "paypal", "amex", "crypto"):
            raise argparse.ArgumentTypeError(f"unknown payment method {name!r} in {text!r}")
        try:
            mix[name] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"share of {name} must be a number") from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"share of {name} must not be negative")
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("at least one share must be positive")
    return mix


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paychaos",
        description="Load and chaos simulator for an e-commerce payment system.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the stack keeps its data, logs and state (default .paychaos)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the stack in the background")
    up.add_argument(
        "--backend",
        choices=("embedded", "docker"),
        default="embedded",
        help="local processes (default) or containers on a Docker Engine",
    )
    up.add_argument(
        "--port-base",
        type=_positive_int,
        help="use consecutive ports from this one instead of the defaults",
    )
    up.add_argument("--scrape-interval-s", type=_positive_float, default=5.0)
    up.add_argument(
        "--gateway-latency-scale",
        type=float,
        default=1.0,
        help="multiply the gateway's latency profiles (0 = instant)",
    )
    up.add_argument("--no-tracing", action="store_true", help="turn OpenTelemetry off in services")
    up.add_argument("--no-proxy", action="store_true", help="connect the API directly (no faults)")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops")
    up.add_argument("--timeout-s", type=_positive_float, default=120.0)

    sub.add_parser("status", help="show the running stack")
    down = sub.add_parser(
        "down", help="stop everything `paychaos up` started and remove its PostgreSQL data"
    )
    down.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the PostgreSQL data in the state dir for the next `paychaos up`",
    )
    sub.add_parser("doctor", help="check what is installed, with the command to fix what is not")

    demo = sub.add_parser("demo", help="start the stack, send checkouts, check the seed's query")
    demo.add_argument("--checkouts", type=_positive_int, default=1200)
    demo.add_argument("--concurrency", type=_positive_int, default=24)
    demo.add_argument(
        "--mix",
        type=_mix,
        default=None,
        help="method shares, e.g. visa=45,paypal=30,crypto=15,amex=10",
    )
    for module in _command_modules():
        _COMMANDS.update(module.register(sub))
    return parser


def _cmd_up(args: argparse.Namespace) -> int:
    from paychaos.stack.daemon import run_daemon, start_background
    from paychaos.stack.embedded import StackConfig, StackPorts

    if args.gateway_latency_scale < 0:
        raise InvalidInput("--gateway-latency-scale must not be negative")
    ports = StackPorts.from_base(args.port_base) if args.port_base else StackPorts()
    _check_ports_free(ports)
    if args.backend == "docker":
        from paychaos.stack.backends.cli import docker_up

        return docker_up(args)
    cfg = StackConfig(
        state_dir=args.state_dir,
        ports=ports,
        scrape_interval_s=args.scrape_interval_s,
        tracing=not args.no_tracing,
        gateway_latency_scale=args.gateway_latency_scale,
        with_proxy=not args.no_proxy,
    )
    if args.foreground:
        return run_daemon(cfg)
    print(f"starting the embedded stack (state in {args.state_dir}) ...")
    state = start_background(cfg, timeout_s=args.timeout_s)
    _print_state(state)
    print("\nstop it with: paychaos down")
    return 0


def _check_ports_free(ports: object) -> None:
    from paychaos.stack.service import port_free

    for name, port in vars(ports).items():
        if not port_free(port):
            raise InvalidInput(
                f"port {port} ({name}) is in use; pick other ports with --port-base N "
                "or stop what uses it (paychaos down, if it is a paychaos stack)"
            )


def _print_state(state: dict[str, object]) -> None:
    from paychaos.stack.daemon import pid_alive

    print(f"supervisor pid {state.get('pid')}  status {state.get('status')}")
    urls = state.get("urls") or {}
    comps = state.get("components") or {}
    assert isinstance(urls, dict) and isinstance(comps, dict)
    for name, comp in comps.items():
        alive = "up  " if pid_alive(comp.get("pid")) else "DOWN"
        restarts = comp.get("restarts", 0)
        note = f"  restarted {restarts}x" if restarts else ""
        print(f"  {alive} {name:<13} pid {comp.get('pid')!s:<8} port {comp.get('port')}{note}")
    print()
    for name, url in urls.items():
        print(f"  {name:<17} {url}")


def _cmd_status(args: argparse.Namespace) -> int:
    from paychaos.stack.backends.cli import docker_state, docker_status
    from paychaos.stack.daemon import pid_alive, read_state

    docker = docker_state(args.state_dir)
    if docker is not None and docker.get("status") == "running":
        return docker_status(args.state_dir, docker)
    state = read_state(args.state_dir)
    if state is None:
        print(f"no stack in {args.state_dir} (start one with: paychaos up)")
        return 1
    _print_state(state)
    running = state.get("status") == "running" and pid_alive(state.get("pid"))
    return 0 if running else 1


def _cmd_down(args: argparse.Namespace) -> int:
    from paychaos.stack.backends.cli import docker_down, docker_state
    from paychaos.stack.daemon import stop_background

    docker = docker_state(args.state_dir)
    if docker is not None and docker.get("status") == "running":
        return docker_down(args.state_dir, docker)
    for line in stop_background(args.state_dir):
        print(line)
    if not args.keep_data:
        from paychaos.stack.postgres import remove_data

        removed = remove_data(args.state_dir)
        if removed:
            print(removed)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from paychaos.cli.doctor import render, run_checks

    checks = run_checks()
    print(render(checks))
    return 0 if all(c.ok for c in checks if c.required) else 3


def _cmd_demo(args: argparse.Namespace) -> int:
    from paychaos.demo import run_demo
    from paychaos.loadgen import DEFAULT_MIX

    run_demo(total=args.checkouts, concurrency=args.concurrency, mix=args.mix or DEFAULT_MIX)
    return 0


# Further subcommands live in their own modules, each with
# ``register(subparsers) -> {command name: handler(args) -> exit code}``.
COMMAND_MODULES = ("paychaos.cli.chaos", "paychaos.cli.run", "paychaos.cli.oom")


def _command_modules() -> list[Any]:
    return [
        importlib.import_module(name)
        for name in COMMAND_MODULES
        if importlib.util.find_spec(name) is not None
    ]


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _cmd_up,
    "status": _cmd_status,
    "down": _cmd_down,
    "doctor": _cmd_doctor,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except PaychaosError as exc:
        print(f"paychaos {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"paychaos {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
