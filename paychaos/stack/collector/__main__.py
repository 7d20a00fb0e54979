"""``python -m paychaos.stack.collector --port N --db PATH``: run the telemetry collector."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from paychaos.contracts.errors import PaychaosError
from paychaos.stack.service import base_parser, is_loopback, serve_asgi
from paychaos.stack.telemetry import TelemetrySettings, setup_telemetry

from .app import CollectorSettings, create_app
from .bodies import DEFAULT_MAX_BODY_BYTES
from .logfile import FollowedLog
from .store import RetentionLimits, SqliteStore

DEFAULT_PORT = 4318  # where OTLP/HTTP exporters look by default (Alloy's port in the seed)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(
        "Telemetry collector: OTLP/HTTP traces and logs, Faro RUM, Alertmanager webhooks, "
        "stored in SQLite and queryable over HTTP.",
        DEFAULT_PORT,
    )
    parser.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    limits = RetentionLimits()
    parser.add_argument("--max-spans", type=_positive_int, default=limits.max_spans)
    parser.add_argument("--max-logs", type=_positive_int, default=limits.max_logs)
    parser.add_argument("--max-rum", type=_positive_int, default=limits.max_rum)
    parser.add_argument("--max-alerts", type=_positive_int, default=limits.max_alerts)
    parser.add_argument(
        "--retention-interval-s",
        type=_positive_float,
        default=5.0,
        help="seconds between retention passes (default 5)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body, before and after gzip inflation (default 16 MiB)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=None,
        help="CORS origin allowed to POST Faro payloads (repeatable; default *)",
    )
    parser.add_argument(
        "--follow-log",
        action="append",
        default=[],
        metavar="SERVICE=PATH",
        help="read SERVICE's JSON log lines from PATH as it grows, instead of OTLP log "
        "records (repeatable; where reading got to is kept beside --db)",
    )
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow binding an address other than loopback",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_telemetry(
        TelemetrySettings(service_name="collector", otlp_endpoint=None, tracing=False),
        install_global=False,
    )
    log = logging.getLogger("paychaos.stack.collector")
    if not is_loopback(args.host) and not args.allow_non_loopback:
        print(
            f"collector: refusing to bind {args.host}: not loopback (add --allow-non-loopback)",
            file=sys.stderr,
        )
        return 2
    try:
        follow = tuple(FollowedLog.parse(text) for text in args.follow_log)
    except PaychaosError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        store = SqliteStore(
            args.db,
            RetentionLimits(args.max_spans, args.max_logs, args.max_rum, args.max_alerts),
        )
    except PaychaosError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return exc.exit_code
    settings = CollectorSettings(
        max_body_bytes=args.max_body_bytes,
        retention_interval_s=args.retention_interval_s,
        allow_origins=tuple(args.allow_origin or ["*"]),
        follow_logs=follow,
        positions_path=Path(args.db + ".log-positions.json") if follow else None,
    )
    log.info("collector listening on %s:%d, database %s", args.host, args.port, args.db)
    serve_asgi(create_app(store, settings), args.host, args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
