"""``python -m paychaos.stack.api``: run the payment API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from paychaos.contracts.release import RELEASE_FILE_ENV, read_release
from paychaos.stack.api.app import ApiSettings, create_app
from paychaos.stack.api.db import DbSettings
from paychaos.stack.api.gateway_client import GatewaySettings
from paychaos.stack.api.metrics import create_metrics, create_noop_metrics
from paychaos.stack.sdk_metrics import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, SdkMetricsCollector
from paychaos.stack.service import base_parser, serve_asgi
from paychaos.stack.telemetry import TELEMETRY_ENV, settings_from_env, setup_telemetry


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("paychaos reference payment API", default_port=8000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="postgresql://user@host:port/db (env DATABASE_URL)",
    )
    parser.add_argument(
        "--gateway-url",
        default=os.environ.get("GATEWAY_URL"),
        help="base URL of the payment gateway (env GATEWAY_URL)",
    )
    parser.add_argument("--gateway-timeout-s", type=float, default=2.0)
    parser.add_argument("--db-statement-timeout-ms", type=int, default=2000)
    parser.add_argument("--db-pool-max", type=int, default=10)
    parser.add_argument("--db-acquire-timeout-s", type=float, default=1.0)
    parser.add_argument("--reconcile-interval-s", type=float, default=5.0)
    parser.add_argument("--no-tracing", action="store_true", help="turn the OpenTelemetry SDK off")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call the API, e.g. http://127.0.0.1:8080 (repeatable)",
    )
    parser.add_argument(
        "--no-telemetry",
        action="store_true",
        default=os.environ.get(TELEMETRY_ENV, "").strip().lower() == "off",
        help="all telemetry off: the OpenTelemetry SDK, Prometheus metrics (an empty /metrics) "
        f"and the JSON log lines (warnings and errors only, plain text); env {TELEMETRY_ENV}=off. "
        "For the telemetry on/off benchmark",
    )
    args = parser.parse_args(argv)
    if not args.database_url or not args.gateway_url:
        parser.error("--database-url and --gateway-url are required")
    for name in (
        "gateway_timeout_s",
        "db_statement_timeout_ms",
        "db_pool_max",
        "db_acquire_timeout_s",
    ):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    overrides: dict[str, object] = {"tracing": False} if args.no_tracing else {}
    if args.no_telemetry:
        overrides = {"tracing": False, "json_logs": False, "log_level": "WARNING"}
    release_file = os.environ.get(RELEASE_FILE_ENV)  # the deploy fault's record
    metrics = create_noop_metrics() if args.no_telemetry else create_metrics()
    # The SDK's own count of spans and log records it failed to deliver (a collector down).
    sdk_metrics = None
    sdk_env = os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "").strip().lower()
    if sdk_env == "true" and not args.no_telemetry:
        sdk_metrics = SdkMetricsCollector()
        metrics.registry.register(sdk_metrics)
    telemetry = setup_telemetry(
        settings_from_env("payment-api", os.environ, **{"log_level": args.log_level, **overrides}),
        meter_provider=sdk_metrics.meter_provider if sdk_metrics else None,
    )
    settings = ApiSettings(
        database=DbSettings(
            url=args.database_url,
            pool_max=args.db_pool_max,
            statement_timeout_ms=args.db_statement_timeout_ms,
            acquire_timeout_s=args.db_acquire_timeout_s,
        ),
        gateway=GatewaySettings(url=args.gateway_url, timeout_s=args.gateway_timeout_s),
        reconcile_interval_s=args.reconcile_interval_s,
        release=read_release(Path(release_file)) if release_file else None,
        cors_origins=tuple(args.cors_origin),
    )
    try:
        serve_asgi(
            create_app(settings, tracer=telemetry.tracer, metrics=metrics), args.host, args.port
        )
    finally:
        telemetry.shutdown()
        if sdk_metrics is not None:
            sdk_metrics.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
