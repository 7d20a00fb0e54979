"""Follow services' JSON log files, the way the strategy's Option A ships logs.

Instead of each service exporting every log record over OTLP (encoded and sent
from the service's own process, on the same GIL as its requests), the service
writes its JSON lines to stderr, the supervisor appends them to
``<state>/logs/<name>.log``, and the collector reads what was appended: what
Alloy's ``loki.source.file`` or the OpenTelemetry Collector's ``filelog``
receiver do for a real deployment.

Each line of :class:`paychaos.stack.telemetry.JsonFormatter` becomes the same
:class:`LogRecord` the service's OTLP record would have been (body, level,
trace and span ids, ``extra`` fields as attributes, ``logger.name``,
``service.name``). A line that is not a JSON object (a crash's traceback, a
library printing to stderr) is kept as it is, level ``info``, with the
attribute ``log.format=text``.

Where reading got to is kept per file in a positions file (inode and offset,
as Alloy and the Collector do), so a collector that restarts neither loses
what was written meanwhile nor stores a line twice; a file replaced or
truncated is read again from its start.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.signals import AttributeValue, LogRecord
from paychaos.stack.telemetry import severity_of

from .otlp import level_of

MAX_READ_BYTES = 4 << 20  # per file and pass: a burst is read over several passes
MAX_LINE_BYTES = 64 << 10  # a longer line is cut (and ends with "…")

_LEVEL_NUMBERS = logging.getLevelNamesMapping()
_OWN_KEYS = frozenset({"ts", "level", "service", "logger", "msg", "trace_id", "span_id"})
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class FollowedLog:
    """One file to follow and the service whose lines it holds."""

    service: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> FollowedLog:
        """``SERVICE=PATH`` (the collector's ``--follow-log``)."""
        service, sep, path = text.partition("=")
        if not sep or not service.strip() or not path.strip():
            raise InvalidInput(f"--follow-log: expected SERVICE=PATH, got {text!r}")
        return cls(service.strip(), Path(path.strip()))


def _time_ns(ts: Any, fallback_ns: int) -> int:
    if not isinstance(ts, str):
        return fallback_ns
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e6) * 1000
    except ValueError:
        return fallback_ns


def _hex_id(value: Any, length: int) -> str | None:
    if isinstance(value, str) and len(value) == length and set(value) <= _HEX:
        return None if set(value) == {"0"} else value
    return None


def _attribute(value: Any) -> AttributeValue:
    if isinstance(value, bool | int | float | str):
        return value
    return orjson.dumps(value).decode()


def parse_line(line: bytes, service: str, read_ns: int) -> LogRecord:
    """One line (without its newline) as a log record.

    The service is the line's own ``service`` (the name its OTLP records carry);
    ``service`` names the lines that do not say.
    """
    if len(line) > MAX_LINE_BYTES:
        line = line[:MAX_LINE_BYTES] + "…".encode()
    entry: Any = None
    if line.startswith(b"{"):
        with contextlib.suppress(orjson.JSONDecodeError):
            entry = orjson.loads(line)
    if not isinstance(entry, dict):
        return LogRecord(
            time_unix_ns=read_ns,
            level="info",
            body=line.decode("utf-8", "replace"),
            service=service,
            attributes={"log.format": "text"},
            resource_attributes={"service.name": service},
        )
    # JsonFormatter writes the logging level's name in lower case; OtlpLogHandler sends
    # that name as the severity text and its number through the same table
    text = str(entry.get("level", "info")).upper()
    number = severity_of(_LEVEL_NUMBERS.get(text, logging.INFO)).value
    named = entry.get("service")
    service = named if isinstance(named, str) and named else service
    logger = entry.get("logger")
    attributes: dict[str, AttributeValue] = {}
    if isinstance(logger, str):
        attributes["logger.name"] = logger
    for key, value in entry.items():
        if key in _OWN_KEYS or value is None:
            continue
        attributes["exception.stacktrace" if key == "exception" else key] = _attribute(value)
    msg = entry.get("msg")
    return LogRecord(
        time_unix_ns=_time_ns(entry.get("ts"), read_ns),
        level=level_of(number, text),
        body=msg if isinstance(msg, str) else "" if msg is None else str(_attribute(msg)),
        service=service,
        severity_number=number,
        severity_text=text,
        trace_id=_hex_id(entry.get("trace_id"), 32),
        span_id=_hex_id(entry.get("span_id"), 16),
        attributes=attributes,
        resource_attributes={"service.name": service},
        scope=logger if isinstance(logger, str) else "",
    )


@dataclass
class Position:
    inode: int
    offset: int


class LogFollower:
    """Reads the complete lines appended to one file since the last :meth:`read`."""

    def __init__(self, followed: FollowedLog, position: Position | None = None) -> None:
        self.followed = followed
        self.position = position
        self._pending: Position | None = None

    def read(self, read_ns: int) -> list[LogRecord]:
        """The new complete lines as records; a partial last line waits for its newline.

        Nothing happens to the position until :meth:`commit`: a store that fails to
        take the records gets the same lines again on the next pass.
        """
        self._pending = None
        try:
            with self.followed.path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                start = 0
                if self.position and self.position.inode == st.st_ino:
                    start = self.position.offset if self.position.offset <= st.st_size else 0
                if start >= st.st_size:
                    self._pending = Position(st.st_ino, start)
                    return []
                fh.seek(start)
                chunk = fh.read(MAX_READ_BYTES)
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) < MAX_READ_BYTES:
                self._pending = Position(st.st_ino, start)
                return []
            end = len(chunk) - 1  # one line longer than a whole read: cut it here
        self._pending = Position(st.st_ino, start + end + 1)
        service = self.followed.service
        return [
            parse_line(line, service, read_ns) for line in chunk[:end].split(b"\n") if line.strip()
        ]

    def commit(self) -> bool:
        """Take the position the last :meth:`read` reached; True if it moved."""
        pending, self._pending = self._pending, None
        if pending is None or pending == self.position:
            return False
        self.position = pending
        return True


class Positions:
    """Where each followed file was read to, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Position]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not isinstance(data, dict):
            return {}
        out: dict[str, Position] = {}
        for key, value in data.items():
            if isinstance(value, Mapping) and {"inode", "offset"} <= value.keys():
                with contextlib.suppress(TypeError, ValueError):
                    out[key] = Position(int(value["inode"]), int(value["offset"]))
        return out

    def save(self, followers: Iterable[LogFollower]) -> None:
        data = {
            str(f.followed.path): {"inode": f.position.inode, "offset": f.position.offset}
            for f in followers
            if f.position is not None
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)
