"""Sends the simulated browsers' Faro bodies to ``<collector>/collect``, off the shoppers' path.

One ``POST`` per journey, as browsers send it; queued journeys are
serialised by the sender's greenlet and pipelined on a keep-alive HTTP/1.1
connection, one ``send`` per batch, so the load generator does not pay a
round trip per simulated browser. A full queue drops and counts: RUM must
never slow the shop down::

    sender = RumSender("http://127.0.0.1:12347")
    sender.submit(journey)          # a rum.Journey (or a serialised body)
    sender.close()
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from paychaos.traffic.rum import Journey

log = logging.getLogger("paychaos.traffic.rum")


class RumSender:
    """Posts Faro bodies to ``<collector>/collect`` from background greenlets (pipelined).

    ``senders`` keep-alive connections, each drained by its own greenlet:
    woken by a submit, it lets more journeys queue for ``linger_s`` (like the
    Faro SDK's batching), takes up to ``max_batch`` of them, serialises them,
    writes every ``POST`` in one ``sendall`` and reads the answers in order. A
    connection error or an answer it cannot frame (no ``Content-Length``)
    closes the connection and counts the unanswered bodies as failed.
    """

    def __init__(
        self,
        collector_url: str,
        *,
        queue_size: int = 5000,
        senders: int = 1,
        max_batch: int = 256,
        linger_s: float = 0.01,
        timeout_s: float = 10.0,
    ) -> None:
        import gevent
        from gevent.event import Event

        parsed = urlsplit(collector_url.rstrip("/") + "/collect")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"RUM needs an http(s):// collector URL, got {collector_url!r}")
        self.url = parsed.geturl()
        self._tls = parsed.scheme == "https"
        self._address = (parsed.hostname, parsed.port or (443 if self._tls else 80))
        self._head = (
            f"POST {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self.batches = 0
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._queue: deque[bytes | Journey] = deque()
        self._wake = Event()
        self._busy = 0
        self._closing = False
        self._workers = [gevent.spawn(self._run) for _ in range(senders)]

    def submit(self, body: bytes | Journey) -> None:
        """Queue one body (or a journey, serialised by the sender); never blocks."""
        if len(self._queue) >= self.queue_size or self._closing:
            self.dropped += 1
            return
        self._queue.append(body)
        self._wake.set()

    def _run(self) -> None:
        import gevent

        conn: _Pipeline | None = None
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
                    self._wake.wait()
                    continue
                if self.linger_s > 0 and len(self._queue) < self.max_batch and not self._closing:
                    gevent.sleep(self.linger_s)
                self.batches += 1
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))
                ]
                bodies = [b if isinstance(b, bytes) else b.payload() for b in batch]
                self._busy += 1
                try:
                    if conn is None:
                        conn = _Pipeline(self._address, self._head, self.timeout_s, tls=self._tls)
                    ok = conn.post_all(bodies)
                    self.sent += ok
                    self.failed += len(bodies) - ok
                except Exception as exc:  # transport errors of a best-effort side channel
                    if conn is not None:
                        conn.close()
                        conn = None
                    self._count_failure(len(bodies), exc)
                finally:
                    self._busy -= 1
        finally:
            if conn is not None:
                conn.close()

    def _count_failure(self, n: int, exc: Exception) -> None:
        before = self.failed
        self.failed += n
        if before == 0 or before // 1000 != self.failed // 1000:
            log.warning(
                "RUM push to %s failed (%s failures so far): %s", self.url, self.failed, exc
            )

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) until every queued body has been sent."""
        import gevent

        deadline = time.monotonic() + timeout_s
        while (self._queue or self._busy) and time.monotonic() < deadline:
            gevent.sleep(0.02)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``), then stop."""
        import gevent

        self._closing = True
        self._wake.set()
        gevent.joinall(self._workers, timeout=timeout_s)
        gevent.killall(self._workers, block=False)


class _Pipeline:
    """One keep-alive HTTP/1.1 connection that pipelines POSTs of the same head."""

    def __init__(
        self, address: tuple[str, int], head: bytes, timeout_s: float, *, tls: bool = False
    ) -> None:
        import socket

        sock = socket.create_connection(address, timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=address[0])
        self._sock = sock
        self._head = head
        self._buf = b""
        self._pos = 0  # where the next answer starts in _buf

    def post_all(self, bodies: list[bytes]) -> int:
        """Send every body, read every answer; returns how many were answered 2xx."""
        parts: list[bytes] = []
        for body in bodies:
            parts += (self._head, str(len(body)).encode(), b"\r\n\r\n", body)
        self._sock.sendall(b"".join(parts))
        ok = 0
        for _ in bodies:
            status, close = self._read_response()
            ok += 200 <= status < 300
            if close:
                raise ConnectionError("the collector closed the connection")
        self._buf = self._buf[self._pos :]
        self._pos = 0
        return ok

    def _read_response(self) -> tuple[int, bool]:
        """The next answer's status and whether it closes the connection.

        Answers are read from ``_pos`` on without cutting the buffer each time (a
        batch of pipelined answers would otherwise be copied once per answer)."""
        buf, pos = self._buf, self._pos
        while (end := buf.find(b"\r\n\r\n", pos)) < 0:
            buf, pos = self._recv(pos)
        head = buf[pos:end].lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ConnectionError(
                f"cannot frame a collector answer without Content-Length: {head!r}"
            )
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
        while len(buf) < end + 4 + length:
            buf, pos = self._recv(pos)
            end = buf.find(b"\r\n\r\n", pos)
        self._pos = end + 4 + length
        return status, b"\r\nconnection: close" in head

    def _recv(self, pos: int) -> tuple[bytes, int]:
        """Read more; the buffer from ``pos`` on (what is before it is answered) and 0."""
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the collector closed the connection")
        self._buf = self._buf[pos:] + data
        self._pos = 0
        return self._buf, 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
