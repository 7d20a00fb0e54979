"""The data path: one proxied TCP connection, as two paired ``asyncio.Protocol`` sides.

Bytes read from one side are written straight to the other side's transport
while no toxic is attached (the fast path: no task, no copy, no queue). Once a
toxic is attached, chunks go through a per-direction :class:`Pipe`: a queue
drained by one task that runs the chunk through the toxics in order and writes
the result. Nothing buffers whole messages: chunks are what the socket gave.

Flow control: a side stops reading when the other side's transport is above
its high-water mark (``pause_writing``) or when its pipe holds more than
:data:`PIPE_HIGH_BYTES`; it resumes when both pressures are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from paychaos.chaos.proxy.model import STREAMS, Stream, ToxicSpec
from paychaos.chaos.proxy.toxics import BEHAVIOURS, Toxic

if TYPE_CHECKING:
    from paychaos.chaos.proxy.model import Address

log = logging.getLogger("paychaos.chaos.proxy.link")

PIPE_HIGH_BYTES = 256 * 1024
PIPE_LOW_BYTES = 64 * 1024


class ActiveToxic:
    """A toxic present on a proxy: its (replaceable) spec and its behaviour."""

    __slots__ = ("behaviour", "spec")

    def __init__(self, spec: ToxicSpec) -> None:
        self.spec = spec
        self.behaviour: Toxic = BEHAVIOURS[spec.type]


class ConnectionOwner(Protocol):
    """What a connection needs from its proxy."""

    upstream: Address
    bytes_by_stream: dict[str, int]

    def toxics_for(self, stream: Stream) -> list[ActiveToxic]: ...

    def connection_closed(self, conn: Connection) -> None: ...


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ToxicLink:
    """One toxic applied to one connection in one direction, with that pairing's state."""

    def __init__(self, toxic: ActiveToxic, pipe: Pipe) -> None:
        self.toxic = toxic
        self.pipe = pipe
        self.conn = pipe.conn
        spec = toxic.spec
        # Toxicity is rolled once per connection, like Toxiproxy, unless per_chunk.
        self.enabled = spec.toxicity_mode == "per_chunk" or random.random() < spec.toxicity
        self.active = False
        self.detached = False
        self.transmitted = 0
        self.next_send_at = 0.0
        self._timers: list[asyncio.TimerHandle] = []
        self._waiter: asyncio.Future[None] | None = None

    @property
    def spec(self) -> ToxicSpec:
        return self.toxic.spec

    def applies_to_chunk(self) -> bool:
        if self.detached:
            return False
        spec = self.toxic.spec
        if spec.toxicity_mode == "per_chunk":
            return self.active or random.random() < spec.toxicity
        return self.enabled

    def now(self) -> float:
        """The data path's clock: :func:`time.monotonic`, to the nanosecond."""
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until :meth:`now` reaches ``deadline``, never less; returns early if removed.

        The event loop's clock cannot be trusted for this: uvloop's ``time()`` is
        libuv's millisecond clock, cached for the whole loop iteration (up to ~1 ms
        behind :func:`time.monotonic`), and its timers round delays to the nearest
        millisecond and fire once that coarse clock has passed them, so a timer
        set for *d* may fire before *d* has passed. Hence: a timer for at least
        the time left (:func:`_timer_delay`), then a check on the precise clock,
        and another timer while the deadline is still ahead (when other events
        woke the loop just before it, or for a sub-millisecond wait).
        """
        loop = self.conn.loop
        while not self.detached:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            handle = loop.call_later(_timer_delay(remaining), _wake, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiter = None

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._timers.append(self.conn.loop.call_later(delay_s, callback))

    def dispose(self) -> None:
        """Stop timers and sleeps (the connection is going away)."""
        self.detached = True
        if self._waiter is not None:
            _wake(self._waiter)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def detach(self) -> None:
        """The toxic was removed: undo its effect on this connection."""
        self.dispose()
        if self.enabled:
            self.toxic.behaviour.on_detach(self)


def _timer_delay(remaining_s: float) -> float:
    """The delay of the next timer of :meth:`ToxicLink.sleep_until`, for ``remaining_s`` left.

    From 1 ms on: whole milliseconds, rounded up (a whole number survives
    uvloop's rounding to the nearest millisecond unchanged); this costs at most
    1 ms of extra delay, and usually much less, as the poll that waits for the
    timer starts right away. Under 1 ms, which a millisecond timer cannot do
    (the slicer's microsecond delays; a timer woken a little early): 0, the
    next turn of the loop, so the caller checks the clock again each turn
    (a bounded spin, under 1 ms).

    >>> _timer_delay(0.0500001), _timer_delay(0.05), _timer_delay(0.0012), _timer_delay(0.0004)
    (0.051, 0.05, 0.002, 0.0)
    """
    if remaining_s < 0.001:
        return 0.0
    return math.ceil(remaining_s * 1000 - 1e-6) / 1000


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's or the upstream's."""

    def __init__(self, conn: Connection, *, is_client: bool) -> None:
        self.conn = conn
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.out_pipe: Pipe | None = None  # data read here goes into this pipe
        self.in_pipe: Pipe | None = None  # this pipe writes here
        self.read_pauses = 0
        self.write_paused = False
        self.closed = False
        self.early: list[bytes | None] = []
        self._drain_waiters: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        _set_nodelay(transport)
        if self.is_client:
            self.add_read_pause()  # until the upstream connection is made
            self.conn.start()

    def data_received(self, data: bytes) -> None:
        pipe = self.out_pipe
        if pipe is not None:
            pipe.feed(data)
        else:  # before the upstream is connected (uvloop may read before pause takes effect)
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.out_pipe is not None:
            self.out_pipe.feed_eof()
        else:
            self.early.append(None)
        return True  # keep the socket open for writing (half-close)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.in_pipe is not None:
            self.in_pipe.src.add_read_pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        for waiter in self._drain_waiters:
            _wake(waiter)
        self._drain_waiters.clear()
        if self.in_pipe is not None:
            self.in_pipe.src.remove_read_pause()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for waiter in self._drain_waiters:
            _wake(waiter)
        self._drain_waiters.clear()
        self.conn.side_lost(self)

    # -- helpers ------------------------------------------------------------
    def add_read_pause(self) -> None:
        self.read_pauses += 1
        if self.read_pauses == 1 and self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def remove_read_pause(self) -> None:
        self.read_pauses -= 1
        if self.read_pauses == 0 and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    async def wait_writable(self) -> None:
        while self.write_paused and not self.closed:
            waiter: asyncio.Future[None] = self.conn.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter


class Pipe:
    """One direction of a connection (``upstream``: client → server, or ``downstream``)."""

    def __init__(self, conn: Connection, stream: Stream, src: _Side, dst: _Side) -> None:
        self.conn = conn
        self.stream = stream
        self.src = src
        self.dst = dst
        self.links: list[ToxicLink] = []
        self._effective = 0  # links whose toxic can change the data (not pass-through)
        self._queue: deque[tuple[bytes | None, float]] = deque()
        self._queued_bytes = 0
        self._queue_paused = False
        self._worker: asyncio.Task[None] | None = None
        self.eof_seen = False
        self.finished = False
        self._counter = conn.owner.bytes_by_stream

    def feed(self, data: bytes) -> None:
        self._counter[self.stream] += len(data)
        if self.conn.closed:
            return
        if self._worker is None and not self._effective:
            if not self.dst.closed:
                self.dst.transport.write(data)  # type: ignore[union-attr]
            return
        self._queue.append((data, time.monotonic()))
        self._queued_bytes += len(data)
        if self._queued_bytes > PIPE_HIGH_BYTES and not self._queue_paused:
            self._queue_paused = True
            self.src.add_read_pause()
        self._kick()

    def feed_eof(self) -> None:
        if self.eof_seen:
            return
        self.eof_seen = True
        if self._worker is None and not self._effective:
            self._deliver_eof()
            return
        self._queue.append((None, time.monotonic()))
        self._kick()

    def abandon(self) -> None:
        """The destination is gone: drop what is queued, nothing more can be delivered."""
        self._queue.clear()
        self.finished = True
        self.eof_seen = True

    def attach(self, toxic: ActiveToxic) -> None:
        link = ToxicLink(toxic, self)
        self.links.append(link)
        if not toxic.behaviour.passthrough:
            self._effective += 1
        if link.enabled and toxic.spec.toxicity_mode == "per_connection":
            toxic.behaviour.on_attach(link)

    def detach(self, toxic: ActiveToxic) -> None:
        for link in [link for link in self.links if link.toxic is toxic]:
            self.links.remove(link)
            if not toxic.behaviour.passthrough:
                self._effective -= 1
            link.detach()

    def stop(self) -> None:
        for link in self.links:
            link.dispose()
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()

    def _kick(self) -> None:
        if self._worker is None:
            self._worker = self.conn.loop.create_task(self._run())
            self._worker.add_done_callback(_log_failure)

    async def _run(self) -> None:
        try:
            while self._queue and not self.finished:
                data, arrived = self._queue.popleft()
                links = list(self.links)
                if data is None:
                    for link in links:
                        if link.enabled and not link.detached:
                            await link.toxic.behaviour.on_eof(link)
                    self._deliver_eof()
                    continue
                self._queued_bytes -= len(data)
                if self._queue_paused and self._queued_bytes <= PIPE_LOW_BYTES:
                    self._queue_paused = False
                    self.src.remove_read_pause()
                await self._send(links, 0, data, arrived)
        finally:
            self._worker = None

    async def _send(self, links: list[ToxicLink], index: int, data: bytes, arrived: float) -> None:
        while index < len(links):
            link = links[index]
            index += 1
            if link.applies_to_chunk():
                emit = functools.partial(self._send, links, index, arrived=arrived)
                await link.toxic.behaviour.on_chunk(link, data, arrived, emit)
                return
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        dst = self.dst
        if dst.write_paused:
            await dst.wait_writable()
        if data and not self.conn.closed and not dst.closed and dst.transport is not None:
            dst.transport.write(data)

    def _deliver_eof(self) -> None:
        dst = self.dst
        if not dst.closed and dst.transport is not None and dst.transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                dst.transport.write_eof()
        self.finished = True
        self.conn.maybe_finished()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("pipe worker failed", exc_info=task.exception())


class Connection:
    """A client connection accepted by a proxy and its upstream connection."""

    def __init__(self, owner: ConnectionOwner, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self.client = _Side(self, is_client=True)
        self.server = _Side(self, is_client=False)
        self.pipes: dict[str, Pipe] = {}
        self.closed = False

    def start(self) -> None:
        """The client's socket is accepted: connect upstream."""
        self.loop.create_task(self._connect_upstream()).add_done_callback(_log_failure)

    async def _connect_upstream(self) -> None:
        upstream = self.owner.upstream
        try:
            await self.loop.create_connection(lambda: self.server, upstream.host, upstream.port)
        except OSError as exc:
            log.info("upstream %s unreachable: %s", upstream, exc)
            self.close()
            return
        if self.closed:  # the client left while we were connecting
            if self.server.transport is not None:
                self.server.transport.abort()
            return
        up = Pipe(self, "upstream", self.client, self.server)
        down = Pipe(self, "downstream", self.server, self.client)
        self.client.out_pipe = self.server.in_pipe = up
        self.server.out_pipe = self.client.in_pipe = down
        self.pipes = {"upstream": up, "downstream": down}
        for stream in STREAMS:
            for toxic in self.owner.toxics_for(stream):
                self.pipes[stream].attach(toxic)
        early, self.client.early = self.client.early, []
        for data in early:
            if data is None:
                up.feed_eof()
            else:
                up.feed(data)
        self.client.remove_read_pause()

    def attach(self, toxic: ActiveToxic) -> None:
        if self.pipes and not self.closed:
            self.pipes[toxic.spec.stream].attach(toxic)

    def detach(self, toxic: ActiveToxic) -> None:
        if self.pipes:
            self.pipes[toxic.spec.stream].detach(toxic)

    def side_lost(self, side: _Side) -> None:
        if self.closed:
            return
        if side.out_pipe is not None:
            side.out_pipe.feed_eof()
        if side.in_pipe is not None:
            side.in_pipe.abandon()
        if not self.pipes:
            self.close()
        else:
            self.maybe_finished()

    def maybe_finished(self) -> None:
        if self.pipes and all(pipe.finished for pipe in self.pipes.values()):
            self.close()

    def _shutdown(self, how: Callable[[asyncio.Transport], None]) -> None:
        if self.closed:
            return
        self.closed = True
        for pipe in self.pipes.values():
            pipe.stop()
        for side in (self.client, self.server):
            if side.transport is not None and not side.closed:
                how(side.transport)
        self.owner.connection_closed(self)

    def close(self) -> None:
        """Close both sockets after flushing what was already written (FIN)."""
        self._shutdown(lambda transport: transport.close())

    def abort(self) -> None:
        """Close both sockets now, discarding unsent data."""
        self._shutdown(lambda transport: transport.abort())

    def reset(self) -> None:
        """Reset both sockets: SO_LINGER 0 then close, so the peers get RST (ECONNRESET)."""

        def rst(transport: asyncio.Transport) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

        self._shutdown(rst)
