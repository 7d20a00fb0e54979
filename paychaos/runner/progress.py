"""Live progress of a run: one refreshing line on a terminal, a line per second otherwise.

Example::

    progress = Progress(sys.stderr)
    progress.update(ProgressState("fault", 42.0, 19.8, 0.02, ("db-latency",), 2, 5))
    progress.close()
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class ProgressState:
    """What the progress line shows."""

    phase: str
    elapsed_s: float
    rate_per_s: float
    error_ratio: float
    faults_active: tuple[str, ...]
    met: int
    total: int
    scenario: str = ""


def render(state: ProgressState) -> str:
    faults = ",".join(state.faults_active) or "-"
    return (
        f"[{state.scenario}] {state.phase:<9} {state.elapsed_s:6.1f}s  "
        f"{state.rate_per_s:5.1f} rps  err {state.error_ratio:6.1%}  "
        f"faults {faults}  expectations {state.met}/{state.total}"
    )


class Progress:
    """Writes progress to ``stream`` (``\\r`` refresh on a TTY, throttled lines otherwise)."""

    def __init__(self, stream: TextIO | None, *, interval_s: float = 1.0) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.interval_s = interval_s
        self._last = 0.0
        self._width = 0

    def update(self, state: ProgressState, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else self.interval_s):
            return
        self._last = now
        line = render(state)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (an event: fault injected, expectation met...)."""
        if self.stream is None:
            return
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
