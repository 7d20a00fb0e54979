"""``python -m paychaos.stack.webapp --port N --api-url URL --collector-url URL``: serve the page."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from paychaos.contracts.errors import PaychaosError
from paychaos.stack.service import base_parser, is_loopback, serve_asgi

from . import BUILD_HINT, DIST_DIR, built
from .server import PageSettings, create_app

DEFAULT_PORT = 8080


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(
        "The seed's React checkout page (Faro web SDK), built in dist/.", DEFAULT_PORT
    )
    parser.add_argument("--api-url", required=True, help="the payment API's base URL")
    parser.add_argument("--collector-url", required=True, help="where Faro posts (<url>/collect)")
    parser.add_argument("--checkout-path", default="/api/checkout")
    parser.add_argument(
        "--dist", type=Path, default=DIST_DIR, help="the built page (default: dist/)"
    )
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        print(f"webapp: refusing to bind {args.host}: not loopback", file=sys.stderr)
        return 2
    if not built(args.dist):
        print(f"webapp: no built page in {args.dist}; {BUILD_HINT}", file=sys.stderr)
        return 2
    try:
        settings = PageSettings(
            dist=args.dist,
            api_url=args.api_url,
            collector_url=args.collector_url,
            checkout_path=args.checkout_path,
        )
    except PaychaosError as exc:
        print(f"webapp: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("paychaos.stack.webapp").info(
        "serving %s on %s:%d", args.dist, args.host, args.port
    )
    serve_asgi(create_app(settings), args.host, args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
