"""What each toxic type does to the data of one connection, in one direction.

A toxic behaviour is stateless; per-connection state lives on the
:class:`~paychaos.chaos.proxy.link.ToxicLink` it is handed. The pipe of a connection
calls, in order of the toxics' creation:

- ``on_attach(link)`` when the toxic meets the connection (at connect, or when
  the toxic is added to a live connection) and the toxicity roll said yes;
- ``on_chunk(link, data, arrived, emit)`` for every chunk the toxic applies to:
  ``emit(data)`` passes (possibly transformed) data on to the next toxic, not
  calling it drops the data;
- ``on_eof(link)`` before the end of the stream (FIN) is passed on;
- ``on_detach(link)`` when the toxic is removed or expires.

Semantics follow Toxiproxy 2.x (``toxics/*.go``), with the differences noted.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paychaos.chaos.proxy.link import ToxicLink

Emit = Callable[[bytes], Awaitable[None]]


class Toxic:
    """Base behaviour: lets everything through unchanged."""

    #: True when the toxic never changes the data or its timing: a connection whose
    #: toxics are all pass-through stays on the fast path (no queue, no task).
    passthrough = False

    def on_attach(self, link: ToxicLink) -> None:
        """The toxic now applies to this connection (per-connection mode)."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        await emit(data)

    async def on_eof(self, link: ToxicLink) -> None:
        """Called before the end of stream is passed on."""

    def on_detach(self, link: ToxicLink) -> None:
        """The toxic was removed from the proxy (or expired)."""


class Noop(Toxic):
    """Toxiproxy's ``noop``: passes the data through unchanged."""

    passthrough = True


class Latency(Toxic):
    """Delays each chunk by ``latency`` ± ``jitter`` ms counted from its arrival."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        spec = link.spec
        delay_ms = float(spec.attr("latency"))
        jitter = spec.attr("jitter")
        if jitter:
            delay_ms += random.uniform(-jitter, jitter)
        await link.sleep_until(arrived + delay_ms / 1000.0)
        await emit(data)


class Timeout(Toxic):
    """Drops all data; closes the connection after ``timeout`` ms (0: hold until removed).

    Removing the toxic closes the connections it was holding (as Toxiproxy's
    ``Cleanup``). Unlike Toxiproxy, the clock starts when the toxic takes hold
    and is not restarted by data arriving meanwhile.
    """

    def on_attach(self, link: ToxicLink) -> None:
        self._take_hold(link)

    def _take_hold(self, link: ToxicLink) -> None:
        if link.active:
            return
        link.active = True
        timeout_ms = link.spec.attr("timeout")
        if timeout_ms > 0:
            link.call_later(timeout_ms / 1000.0, link.conn.close)

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        self._take_hold(link)  # per-chunk mode: this chunk starts the hold

    def on_detach(self, link: ToxicLink) -> None:
        if link.active:
            link.conn.close()


class ResetPeer(Toxic):
    """On the first chunk, drops data and resets (RST) the connection after ``timeout`` ms."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        if link.active:
            return
        link.active = True
        link.call_later(link.spec.attr("timeout") / 1000.0, link.conn.reset)


class Bandwidth(Toxic):
    """Limits the rate to ``rate`` KB/s (1 KB = 1000 bytes), sending in 100 ms slices."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        rate_bps = link.spec.attr("rate") * 1000
        if rate_bps <= 0:
            await emit(data)
            return
        slice_bytes = max(1, rate_bps // 10)
        view = memoryview(data)
        for start in range(0, len(data), slice_bytes):
            piece = view[start : start + slice_bytes]
            now = link.now()
            link.next_send_at = max(link.next_send_at, now) + len(piece) / rate_bps
            await link.sleep_until(link.next_send_at)
            await emit(bytes(piece))


class Slicer(Toxic):
    """Cuts chunks into ``average_size`` ± ``size_variation`` bytes, ``delay`` µs apart."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        spec = link.spec
        average = spec.attr("average_size")
        if average <= 0:
            await emit(data)
            return
        variation = min(spec.attr("size_variation"), average - 1)
        delay_s = spec.attr("delay") / 1_000_000
        position = 0
        while position < len(data):
            size = average + random.randint(-variation, variation)
            piece = data[position : position + size]
            position += size
            await emit(piece)
            if position < len(data) and delay_s > 0:
                await link.sleep_until(link.now() + delay_s)


class SlowClose(Toxic):
    """Delays the end of stream (the FIN) by ``delay`` ms."""

    async def on_eof(self, link: ToxicLink) -> None:
        await link.sleep_until(link.now() + link.spec.attr("delay") / 1000.0)


class LimitData(Toxic):
    """Passes ``bytes`` bytes in this direction, then closes the connection."""

    async def on_chunk(self, link: ToxicLink, data: bytes, arrived: float, emit: Emit) -> None:
        remaining = link.spec.attr("bytes") - link.transmitted
        if remaining > 0:
            piece = data[:remaining]
            link.transmitted += len(piece)
            await emit(piece)
        if link.spec.attr("bytes") - link.transmitted <= 0:
            link.conn.close()


BEHAVIOURS: dict[str, Toxic] = {
    "latency": Latency(),
    "timeout": Timeout(),
    "reset_peer": ResetPeer(),
    "bandwidth": Bandwidth(),
    "slicer": Slicer(),
    "slow_close": SlowClose(),
    "limit_data": LimitData(),
    "noop": Noop(),
}
