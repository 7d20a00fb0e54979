"""A tiny, instant stand-in for the payment API (tests and the traffic benchmark).

Answers every ``POST /api/checkout`` with 201 and a fixed payment body, every
other request with 200 ``{"status": "ok"}``, and accepts Faro/OTLP posts, as
fast as asyncio can parse HTTP/1.1 keep-alive (and pipelined) requests, or
after ``--delay-ms``. Run it in its own process (never inside Locust)::

    python -m paychaos.traffic.fake_api --port 18000 [--delay-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

_BODY = b'{"id":"00000000-0000-4000-8000-000000000000","status":"succeeded","method":"visa"}'
_CREATED = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)
_OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


class _Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive (and pipelining) with Content-Length bodies, no chunked uploads."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, answers = 0, []
        while (head_end := buf.find(b"\r\n\r\n", pos)) >= 0:
            head = bytes(buf[pos:head_end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            end = head_end + 4 + length
            if len(buf) < end:
                break
            answers.append(_CREATED if head.startswith(b"post /api/checkout") else _OK)
            pos = end
        if pos:
            del buf[:pos]
        if answers:
            assert self.transport is not None
            if self.delay_s > 0:
                loop = asyncio.get_running_loop()
                loop.call_later(self.delay_s, self._write, b"".join(answers))
            else:
                self.transport.write(b"".join(answers))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(host: str, port: int, delay_ms: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http(delay_ms / 1000), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="instant fake payment API (tests, benchmarks)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer after this delay")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
