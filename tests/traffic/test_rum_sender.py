"""The RUM sender's pipelined connection: answers framed by Content-Length, however they arrive."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from paychaos.traffic.rum_sender import _Pipeline

HEAD = b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "


def _answer(status: int, body: bytes = b'{"status":"ok"}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


@contextmanager
def collector(answers: list[bytes], chunk: int) -> Iterator[tuple[tuple[str, int], list[bytes]]]:
    """A loopback server that reads pipelined POSTs and, for each batch it is given, writes
    the answers in ``chunk``-byte pieces (so answers straddle every ``recv``)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            for answer_batch in answers:
                wanted = answer_batch.count(b"HTTP/1.1 ")
                while data.count(b"POST /collect") < wanted or not _complete(data, wanted):
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                received.append(data)
                data = b""
                for i in range(0, len(answer_batch), chunk):
                    conn.sendall(answer_batch[i : i + chunk])
                    time.sleep(0.001)
            time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2], received
    finally:
        listener.close()
        thread.join(timeout=5)


def _complete(data: bytes, n: int) -> bool:
    """``n`` requests with their whole bodies are in ``data``."""
    at = 0
    for _ in range(n):
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            return False
        length = int(data[data.rfind(b"Content-Length: ", at, end) + 16 : end])
        at = end + 4 + length
        if at > len(data):
            return False
    return True


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_pipelined_answers_are_counted_however_they_are_cut(chunk: int) -> None:
    first = [_answer(200), _answer(204, b""), _answer(500, b'{"error":"x"}'), _answer(202)]
    second = [_answer(200, b"a" * 3000), _answer(400)]
    with collector([b"".join(first), b"".join(second)], chunk) as (address, received):
        pipe = _Pipeline(address, HEAD, timeout_s=5)
        try:
            assert pipe.post_all([b'{"a":1}', b"{}", b'{"b":2}', b"[]"]) == 3
            assert pipe.post_all([b'{"c":3}', b"{}"]) == 1  # the same connection, state carried
        finally:
            pipe.close()
    assert received[0].count(b"POST /collect") == 4
    assert b'Content-Length: 7\r\n\r\n{"a":1}' in received[0]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "without Content-Length",
        ),
        (_answer(200, extra=b"Connection: close\r\n"), "closed the connection"),
    ],
    ids=["no-content-length", "connection-close"],
)
def test_an_answer_it_cannot_go_on_after_is_an_error(answer: bytes, error: str) -> None:
    with collector([answer], 65536) as (address, _):
        pipe = _Pipeline(address, HEAD, timeout_s=5)
        try:
            with pytest.raises(ConnectionError, match=error):
                pipe.post_all([b"{}"])
        finally:
            pipe.close()
