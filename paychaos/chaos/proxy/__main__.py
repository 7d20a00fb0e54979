"""``python -m paychaos.chaos.proxy --host 127.0.0.1 --port 8474 [--config proxies.json]``.

Serves the Toxiproxy-compatible control API and every proxy on one uvloop
event loop; exits cleanly (toxics removed, sockets closed) on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from paychaos.chaos.proxy.server import ProxyServer
from paychaos.contracts.errors import PaychaosError
from paychaos.stack.service import base_parser
from paychaos.stack.telemetry import settings_from_env, setup_telemetry

log = logging.getLogger("paychaos.chaos.proxy")


async def _serve(server: ProxyServer, config: Path | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        if config is not None:
            count = await server.load_config(config)
            log.info("created %d proxies from %s", count, config)
        log.info("fault proxy listening on %s", server.url)
        await stop.wait()
        log.info("fault proxy stopping")
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("Fault proxy with a Toxiproxy-compatible HTTP API", 8474)
    parser.add_argument("--config", type=Path, help="JSON file of proxies to create at start")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow listen and upstream addresses outside loopback",
    )
    args = parser.parse_args(argv)
    telemetry = setup_telemetry(
        settings_from_env("fault-proxy", os.environ, log_level=args.log_level.upper())
    )
    try:
        server = ProxyServer(args.host, args.port, allow_non_loopback=args.allow_non_loopback)
        uvloop.run(_serve(server, args.config))
    except PaychaosError as exc:
        print(f"paychaos.chaos.proxy: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
