"""Trace analysis: self time, critical path, and who the latency belongs to.

This answers the seed's §6.2 question ("a payment takes 5 s: where did the time
go?") with numbers, e.g. ``payment-api / SELECT payments: 4.4 s of 5.0 s on the
critical path (88%)``.

Definitions (all times in ns, intervals half-open):

- **self time** of a span = its duration minus the length of the *union* of its
  children's intervals, each clipped to the span. Overlapping or concurrent
  children are counted once; a child running past its parent counts only
  inside the parent.
- **critical path** of a trace: walking back from the end of the root, at each
  moment the span that the caller was waiting on. Inside a span, the child
  that finished last (before the current point) is on the path; the path
  enters it, then resumes in the parent at that child's start. Time when no
  child was running is the parent's own (self) time. The path's segments tile
  the root exactly: their durations add up to the root's duration.
- **contribution** of a (service, span name) to a set of traces = the sum of
  its segments' durations on the critical paths: its self time spent on the
  critical path.

Example::

    path = critical_path(source.get_trace(trace_id))
    breakdown = latency_breakdown([source.get_trace(t) for t in trace_ids])
    print(breakdown.dominant.describe())
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from paychaos.contracts.signals import Span, SpanQuery, TraceSource

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class PathSegment:
    """A stretch of the critical path spent in one span's own code (not in a child)."""

    span_id: str
    service: str
    name: str
    start_unix_ns: int
    end_unix_ns: int

    @property
    def duration_ns(self) -> int:
        return self.end_unix_ns - self.start_unix_ns


@dataclass(frozen=True)
class CriticalPath:
    """The critical path of one trace, segments in chronological order."""

    trace_id: str
    root_span_id: str
    duration_ns: int
    segments: tuple[PathSegment, ...]

    def time_by_span_ns(self) -> dict[str, int]:
        """Time on the critical path per span id."""
        out: dict[str, int] = defaultdict(int)
        for segment in self.segments:
            out[segment.span_id] += segment.duration_ns
        return dict(out)

    def span_ids(self) -> list[str]:
        """Span ids on the path, in the order the path first meets them."""
        return list(dict.fromkeys(segment.span_id for segment in self.segments))


@dataclass(frozen=True)
class Contributor:
    """One (service, span name) and its share of the latency of a set of traces."""

    service: str
    name: str
    critical_path_ns: int
    self_time_ns: int
    traces: int
    share: float

    @property
    def critical_path_s(self) -> float:
        return self.critical_path_ns / _NS_PER_S

    def describe(self) -> str:
        return (
            f"{self.service}: {self.critical_path_s:.1f} s in {self.name!r} on the critical "
            f"path ({self.share:.0%} of the latency, {self.traces} trace(s))"
        )


@dataclass(frozen=True)
class LatencyBreakdown:
    """Where the time of a set of traces went, biggest contributor first."""

    traces: int
    total_critical_path_ns: int
    contributors: tuple[Contributor, ...]

    @property
    def dominant(self) -> Contributor | None:
        return self.contributors[0] if self.contributors else None


def _unique(spans: Iterable[Span]) -> dict[str, Span]:
    by_id: dict[str, Span] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    return by_id


def _children(by_id: Mapping[str, Span]) -> dict[str, list[Span]]:
    children: dict[str, list[Span]] = defaultdict(list)
    for span in by_id.values():
        if span.parent_span_id is not None and span.parent_span_id in by_id:
            children[span.parent_span_id].append(span)
    return children


def _union_ns(intervals: Iterable[tuple[int, int]]) -> int:
    total = 0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def self_times(spans: Iterable[Span]) -> dict[str, int]:
    """Self time (ns) of every span of a trace, by span id."""
    by_id = _unique(spans)
    children = _children(by_id)
    out: dict[str, int] = {}
    for span_id, span in by_id.items():
        clipped = [
            (max(c.start_unix_ns, span.start_unix_ns), min(c.end_unix_ns, span.end_unix_ns))
            for c in children.get(span_id, ())
        ]
        busy = _union_ns((s, e) for s, e in clipped if e > s)
        out[span_id] = span.duration_ns - busy
    return out


def roots(spans: Iterable[Span]) -> list[Span]:
    """Spans without a parent in the set (the real root, or orphans of missing parents)."""
    by_id = _unique(spans)
    return [s for s in by_id.values() if s.parent_span_id is None or s.parent_span_id not in by_id]


def critical_path(spans: Sequence[Span]) -> CriticalPath:
    """The critical path of one trace (from its longest root, if several).

    Raises ``ValueError`` for an empty trace.
    """
    by_id = _unique(spans)
    if not by_id:
        raise ValueError("cannot analyse an empty trace")
    children = _children(by_id)
    candidates = roots(by_id.values()) or list(by_id.values())
    root = min(candidates, key=lambda s: (-s.duration_ns, s.start_unix_ns, s.span_id))
    reversed_segments: list[PathSegment] = []
    # Explicit stack instead of recursion: deep traces must not hit the recursion limit.
    # Each frame: (span, window_start, window_end, children sorted by end desc, next index, cursor)
    stack: list[tuple[Span, int, list[tuple[int, int, Span]], int, int]] = []

    def push(span: Span, lo: int, hi: int) -> None:
        kids = []
        for child in children.get(span.span_id, ()):
            start, end = max(child.start_unix_ns, lo), min(child.end_unix_ns, hi)
            if end > start:
                kids.append((start, end, child))
        kids.sort(key=lambda k: (-k[1], k[0], k[2].span_id))
        stack.append((span, lo, kids, 0, hi))

    def emit(span: Span, start: int, end: int) -> None:
        if end > start:
            reversed_segments.append(PathSegment(span.span_id, span.service, span.name, start, end))

    push(root, root.start_unix_ns, root.end_unix_ns)
    while stack:
        span, lo, kids, index, cursor = stack.pop()
        while index < len(kids) and kids[index][1] > cursor:
            index += 1  # still running when the path resumed here: not waited on
        if index == len(kids):
            emit(span, lo, cursor)
            continue
        start, end, child = kids[index]
        emit(span, end, cursor)
        stack.append((span, lo, kids, index + 1, start))  # resume in the parent at child start
        push(child, start, end)
    segments = tuple(reversed(reversed_segments))
    return CriticalPath(root.trace_id, root.span_id, root.duration_ns, segments)


def latency_breakdown(traces: Iterable[Sequence[Span]]) -> LatencyBreakdown:
    """Sum critical-path time per (service, span name) over traces; biggest first."""
    on_path: dict[tuple[str, str], int] = defaultdict(int)
    self_total: dict[tuple[str, str], int] = defaultdict(int)
    seen_in: dict[tuple[str, str], int] = defaultdict(int)
    count = 0
    total = 0
    for spans in traces:
        if not spans:
            continue
        count += 1
        path = critical_path(spans)
        total += path.duration_ns
        keys_here: set[tuple[str, str]] = set()
        for segment in path.segments:
            key = (segment.service, segment.name)
            on_path[key] += segment.duration_ns
            keys_here.add(key)
        by_id = _unique(spans)
        for span_id, self_ns in self_times(by_id.values()).items():
            span = by_id[span_id]
            self_total[(span.service, span.name)] += self_ns
        for key in keys_here:
            seen_in[key] += 1
    contributors = sorted(
        (
            Contributor(
                service=key[0],
                name=key[1],
                critical_path_ns=ns,
                self_time_ns=self_total[key],
                traces=seen_in[key],
                share=ns / total if total else 0.0,
            )
            for key, ns in on_path.items()
        ),
        key=lambda c: (-c.critical_path_ns, c.service, c.name),
    )
    return LatencyBreakdown(count, total, tuple(contributors))


def breakdown_for(
    source: TraceSource, query: SpanQuery, *, max_traces: int = 100
) -> LatencyBreakdown:
    """Breakdown of the traces containing spans that match ``query`` (newest first)."""
    trace_ids = list(dict.fromkeys(span.trace_id for span in source.find_spans(query)))
    return latency_breakdown(source.get_trace(t) for t in trace_ids[:max_traces])
