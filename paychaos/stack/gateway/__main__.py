"""``python -m paychaos.stack.gateway``: run the payment gateway simulator.

Example::

    python -m paychaos.stack.gateway --port 8101 --seed 42 --latency-scale 0 \\
        --ledger .paychaos/gateway-ledger.jsonl --admin-token s3cret
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence

import prometheus_client

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.service import base_parser, is_loopback, serve_asgi
from paychaos.stack.telemetry import settings_from_env, setup_telemetry

from .app import ADMIN_TOKEN_ENV, SERVICE_NAME, GatewayConfig, create_app
from .profiles import DEFAULT_PROFILES, load_profiles

DEFAULT_PORT = 8101
log = logging.getLogger("paychaos.stack.gateway")


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(
        "Payment gateway simulator (Stripe / PayPal / VISA / crypto).", DEFAULT_PORT
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the latency/decline RNG")
    parser.add_argument(
        "--latency-scale",
        type=_scale,
        default=1.0,
        help="multiply every profile latency (0 = instant, for benchmarks; default 1)",
    )
    parser.add_argument("--profiles", default=None, help="YAML file overriding per-method profiles")
    parser.add_argument(
        "--ledger", default=None, help="append-only JSONL ledger file, reloaded at start"
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        help=f"bearer token of the admin API (or env {ADMIN_TOKEN_ENV}; unset = admin disabled)",
    )
    parser.add_argument(
        "--sweep-interval-s",
        type=_scale,
        default=0.5,
        help="how often expired behaviours are swept (default 0.5)",
    )
    return parser


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> GatewayConfig:
    """Turn parsed flags into a config; raises :class:`InvalidInput` on bad files."""
    profiles = load_profiles(args.profiles) if args.profiles else dict(DEFAULT_PROFILES)
    token = args.admin_token or environ.get(ADMIN_TOKEN_ENV) or None
    return GatewayConfig(
        profiles=profiles,
        seed=args.seed,
        latency_scale=args.latency_scale,
        admin_token=token,
        ledger_path=args.ledger,
        sweep_interval_s=max(args.sweep_interval_s, 0.05),
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    # One series per counter child is enough; this process owns its client globals.
    prometheus_client.disable_created_metrics()
    telemetry = setup_telemetry(
        settings_from_env(SERVICE_NAME, env, log_level=args.log_level.upper())
    )
    try:
        config = config_from_args(args, env)
        app = create_app(config, tracer=telemetry.tracer)
    except InvalidInput as exc:
        print(f"paychaos.stack.gateway: error: {exc}", file=sys.stderr)
        telemetry.shutdown()
        return exc.exit_code
    if not is_loopback(args.host):
        log.warning("gateway bound to a non-loopback address", extra={"host": args.host})
    log.info(
        "gateway starting",
        extra={
            "host": args.host,
            "port": args.port,
            "latency_scale": config.latency_scale,
            "seed": config.seed,
            "ledger": config.ledger_path or "",
            "admin_api": bool(config.admin_token),
        },
    )
    try:
        # uvicorn's own start/stop lines are plain text: keep them to warnings and up.
        uvicorn_level = "debug" if args.log_level == "debug" else "warning"
        serve_asgi(app, args.host, args.port, log_level=uvicorn_level)
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
