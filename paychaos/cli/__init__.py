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
from typing import TYPE_CHECKING, Any

from paychaos.contracts.errors import InvalidInput, PaychaosError, StackError

if TYPE_CHECKING:
    from paychaos.contracts.target import Target
    from paychaos.stack.state import StackState

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


def _project_name(text: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,40}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a project name (lowercase letters, digits, '_', '.', '-'; "
            "at most 41 characters)"
        )
    return text


def _mix(text: str) -> dict[str, float]:
    """``visa=45,paypal=30,crypto=15,amex=10``."""
    from paychaos.contracts.domain import parse_mix

    try:
        return {str(k): v for k, v in parse_mix(text).items()}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


TARGET_HELP = "embedded (default), docker, a target file, or a name in targets/"


def add_target_option(parser: argparse.ArgumentParser) -> None:
    """``--target`` on a subcommand (it may also stand before the subcommand)."""
    parser.add_argument(
        "--target", default=argparse.SUPPRESS, metavar="NAME|FILE", help=TARGET_HELP
    )


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
    parser.add_argument("--target", default=None, metavar="NAME|FILE", help=TARGET_HELP)
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
    up.add_argument(
        "--app",
        choices=("python", "nestjs"),
        default="python",
        help="the payment API: paychaos' own (python, default) or the seed's NestJS service "
        "(nestjs: embedded, Node.js 20+ and `make nestjs`; docker, its own image, built "
        "on the Debian 13 base: stack/docker/build-base.sh paychaos/base:trixie)",
    )
    up.add_argument("--no-tracing", action="store_true", help="turn OpenTelemetry off in services")
    up.add_argument("--no-proxy", action="store_true", help="connect the API directly (no faults)")
    up.add_argument(
        "--webapp",
        action="store_true",
        help="serve the React checkout page (Faro web SDK) too; build it first with make webapp",
    )
    up.add_argument(
        "--project",
        type=_project_name,
        default="paychaos",
        help="docker backend: the containers' name prefix and label (default paychaos)",
    )
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops")
    up.add_argument("--timeout-s", type=_positive_float, default=120.0)

    add_target_option(sub.add_parser("status", help="show the running stack, or a target"))
    down = sub.add_parser(
        "down", help="stop everything `paychaos up` started and remove its PostgreSQL data"
    )
    down.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the PostgreSQL data in the state dir for the next `paychaos up`",
    )
    sub.add_parser("doctor", help="check what is installed, with the command to fix what is not")

    demo = sub.add_parser(
        "demo", help="send checkouts to a target (default: a fresh stack), check the seed's query"
    )
    add_target_option(demo)
    demo.add_argument("--checkouts", type=_positive_int, default=1200)
    demo.add_argument(
        "--app",
        choices=("python", "nestjs"),
        default="python",
        help="the payment API of the stack started for the demo (nestjs: `make nestjs` first)",
    )
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
    from paychaos.stack.state import read_state

    if args.gateway_latency_scale < 0:
        raise InvalidInput("--gateway-latency-scale must not be negative")
    if args.webapp:
        from paychaos.stack.webapp import BUILD_HINT, DIST_DIR, built

        if not built(DIST_DIR):  # say it here, not in the background daemon's log
            raise StackError(f"--webapp: the checkout page is not built; {BUILD_HINT}")
    ports = StackPorts.from_base(args.port_base) if args.port_base else StackPorts()
    running = read_state(args.state_dir)
    if running is not None and running.status in ("starting", "running") and running.running():
        raise StackError(  # before the ports: they may well be this very stack's
            f"a stack is already running from {args.state_dir} (pid {running.pid}); "
            "stop it with: paychaos down"
        )
    if args.app == "nestjs" and args.backend == "embedded":
        from paychaos.stack.nestjs_app import require_build

        # before the ports and anything that starts: what is missing, and the command that
        # fixes it (a port taken now may be free in a minute; a missing build is not)
        require_build()
    _check_ports_free(ports, skip=() if args.webapp else ("webapp",))
    if args.backend == "docker":
        from paychaos.stack.backends.cli import docker_up

        return docker_up(args)
    if args.project != "paychaos":
        raise InvalidInput("--project is for --backend docker (containers' name prefix)")
    cfg = StackConfig(
        state_dir=args.state_dir,
        ports=ports,
        scrape_interval_s=args.scrape_interval_s,
        tracing=not args.no_tracing,
        gateway_latency_scale=args.gateway_latency_scale,
        with_proxy=not args.no_proxy,
        webapp=args.webapp,
        app=args.app,
    )
    if args.foreground:
        return run_daemon(cfg)
    print(f"starting the embedded stack (state in {args.state_dir}) ...")
    state = start_background(cfg, timeout_s=args.timeout_s)
    _print_state(state)
    print("\nstop it with: paychaos down")
    return 0


def _check_ports_free(ports: object, skip: tuple[str, ...] = ()) -> None:
    from paychaos.stack.service import port_free

    for name, port in vars(ports).items():
        if name not in skip and not port_free(port):
            raise InvalidInput(
                f"port {port} ({name}) is in use; pick other ports with --port-base N "
                "or stop what uses it (paychaos down, if it is a paychaos stack)"
            )


def _print_state(state: StackState) -> None:
    from paychaos.stack.state import pid_alive

    print(f"{state.backend} stack, held by pid {state.pid}, status {state.status}")
    for name, comp in state.components.items():
        alive = "up  " if pid_alive(comp.pid) else "DOWN"
        note = f"  restarted {comp.restarts}x" if comp.restarts else ""
        print(f"  {alive} {name:<13} pid {comp.pid!s:<8} port {comp.port}{note}")
    print()
    page = state.components.get("webapp")
    if page is not None and page.port:
        print(f"  checkout page     http://127.0.0.1:{page.port}/  (Faro web SDK; ?method=amex)")
    if state.target is not None:
        _print_target(state.target)


def _print_target(target: Target) -> None:
    for role, url in target.urls().items():
        print(f"  {role:<17} {url}")
    offered = target.capabilities()
    print(f"\n  {len(offered)} capabilities configured (probe them: paychaos target check)")


def _cmd_status(args: argparse.Namespace) -> int:
    from paychaos.stack.backends.cli import docker_status
    from paychaos.stack.state import read_state
    from paychaos.targets.resolve import is_builtin, plan_target

    if not is_builtin(args.target):
        target = plan_target(args.target, args.state_dir).target
        print(f"target {target.name} ({target.kind}) from {args.target}")
        _print_target(target)
        return 0
    state = read_state(args.state_dir)
    if state is None or (args.target and state.backend != args.target):
        how = "paychaos up" + (" --backend docker" if args.target == "docker" else "")
        print(f"no {args.target or 'embedded'} stack in {args.state_dir} (start one with: {how})")
        return 1
    if state.backend == "docker" and state.status == "running":
        return docker_status(state)
    _print_state(state)
    return 0 if state.running() else 1


def _cmd_down(args: argparse.Namespace) -> int:
    from paychaos.stack.backends.cli import docker_down
    from paychaos.stack.daemon import stop_background
    from paychaos.stack.state import read_state

    state = read_state(args.state_dir)
    if state is not None and state.backend == "docker" and state.status == "running":
        return docker_down(state)
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
    from paychaos.contracts.domain import DEFAULT_MIX
    from paychaos.demo import run_demo
    from paychaos.targets.resolve import Start, StartOptions, plan_target

    # no --target: a fresh embedded stack, as a new user's first run
    start: Start = "always" if args.target is None else "never"
    if args.app != "python" and args.target is not None:
        raise InvalidInput("--app chooses the API of the stack the demo starts; not with --target")
    if args.app == "nestjs":
        from paychaos.stack.nestjs_app import require_build

        require_build()
    options = StartOptions(
        scrape_interval_s=5.0,
        gateway_latency_scale=1.0,
        gateway_timeout_s=2.0,
        app=args.app,
        say=print,
    )
    with plan_target(args.target, args.state_dir, start=start, options=options).open() as session:
        run_demo(
            session,
            total=args.checkouts,
            concurrency=args.concurrency,
            mix=args.mix or DEFAULT_MIX,
        )
    return 0


# Further subcommands live in their own modules, each with
# ``register(subparsers) -> {command name: handler(args) -> exit code}``.
COMMAND_MODULES = (
    "paychaos.cli.chaos",
    "paychaos.cli.run",
    "paychaos.cli.oom",
    "paychaos.cli.target",
    "paychaos.cli.budget",
)


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
    if not hasattr(args, "target"):
        args.target = None
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
