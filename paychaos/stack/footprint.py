"""Modelled components: processes that hold the memory a real component would.

Grafana, Loki, Tempo and Alloy do not run natively in the embedded stack, and
an EC2 instance also spends memory on its OS and on Docker. Each of them is
represented on the instance by ``python -m paychaos.stack.footprint --component NAME``:
a process that allocates and touches (so it is resident and charged to the
cgroup) the memory the :class:`FootprintModel` gives for the traffic the stack
really carries, polled every second:

- active series: ``prometheus_tsdb_head_series`` from Prometheus;
- span and log rates: ``collector_items_accepted_total{signal}`` from the
  collector's ``/metrics``, as items per second, times the documented
  average item size.

Memory follows the model up at once and down slowly (Go returns freed heap to
the OS lazily), keeps its last inputs while a source is down, and is scaled by
``--scale`` like every memory figure of the demonstration.

The figures and where they come from (``MODELS``; full scale, before ``--scale``):

=========  ==============================================  =========================================
component  model                                           source
=========  ==============================================  =========================================
os-docker  768 MiB constant                                ASSUMPTION (no published figure found):
                                                           kernel, systemd, sshd, SSM agent, dockerd,
                                                           containerd and one shim per container
grafana    512 MiB constant                                Grafana "Install Grafana", hardware
                                                           recommendations: minimum 512 MB
alloy      128 MiB + 11 GiB per 1M active series           Alloy "Estimate resource usage": 11 GiB
           + 120 MiB per MiB/s of logs and spans           per 1M series, 120 MiB per MiB/s of logs;
                                                           base and spans-as-logs are ASSUMPTIONS
loki       256 MiB + 1 GiB per MiB/s of logs               ASSUMPTION: Loki documents sizing only for
                                                           microservices; Tempo's ingester ratio used
tempo      256 MiB + 1 GiB per MiB/s of spans              Tempo "Size the cluster": distributor 2 GB
                                                           per 10 MB/s, ingester 4-20 GB per 3-5 MB/s
                                                           (lower bounds: 0.2 + 0.8 = 1 GB per MB/s);
                                                           base is an ASSUMPTION
=========  ==============================================  =========================================

Average sizes: a span is 500 bytes (Tempo "Manage trace ingestion": "a typical
span size of around 500 bytes"); a log line 400 bytes (ASSUMPTION: one JSON
line of the payment API with trace ids).

Example::

    python -m paychaos.stack.footprint --component loki --scale 0.1 \\
        --collector-url http://127.0.0.1:4318 --prometheus-url http://127.0.0.1:9090
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

MIB = 2**20
GIB = 2**30
PAGE_BYTES = mmap.PAGESIZE
CHUNK_BYTES = 4 * MIB
SPAN_BYTES = 500
LOG_LINE_BYTES = 400
SHRINK_PER_S = 0.05  # at most 5 % of the held memory is returned per second

GRAFANA_INSTALL_URL = "https://grafana.com/docs/grafana/latest/setup-grafana/installation/"
ALLOY_ESTIMATE_URL = "https://grafana.com/docs/alloy/latest/introduction/estimate-resource-usage/"
TEMPO_SIZE_URL = "https://grafana.com/docs/tempo/latest/setup/size/"
TEMPO_SPAN_SIZE_URL = "https://grafana.com/docs/tempo/latest/operations/manage-trace-ingestion/"
LOKI_SIZE_URL = "https://grafana.com/docs/loki/latest/setup/size/"
LOKI_MODES_URL = "https://grafana.com/docs/loki/latest/get-started/deployment-modes/"


@dataclass(frozen=True)
class Traffic:
    """What the stack carries right now (the model's inputs)."""

    active_series: float = 0.0
    spans_per_s: float = 0.0
    logs_per_s: float = 0.0

    @property
    def span_mib_per_s(self) -> float:
        return self.spans_per_s * SPAN_BYTES / MIB

    @property
    def log_mib_per_s(self) -> float:
        return self.logs_per_s * LOG_LINE_BYTES / MIB


@dataclass(frozen=True)
class FootprintModel:
    """Memory of one modelled component as a function of traffic (full scale)."""

    component: str
    stands_for: str
    base_bytes: int
    per_million_series_bytes: int = 0
    per_log_mib_s_bytes: int = 0
    per_span_mib_s_bytes: int = 0
    sources: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    def bytes_for(self, traffic: Traffic, scale: float = 1.0) -> int:
        """Modelled resident memory for ``traffic``, times ``scale``."""
        full = (
            self.base_bytes
            + self.per_million_series_bytes * traffic.active_series / 1e6
            + self.per_log_mib_s_bytes * traffic.log_mib_per_s
            + self.per_span_mib_s_bytes * traffic.span_mib_per_s
        )
        return int(full * scale)

    def formula(self) -> str:
        parts = [f"{self.base_bytes / MIB:.0f} MiB"]
        if self.per_million_series_bytes:
            parts.append(f"{self.per_million_series_bytes / GIB:.0f} GiB per 1M active series")
        if self.per_log_mib_s_bytes:
            parts.append(f"{self.per_log_mib_s_bytes / MIB:.0f} MiB per MiB/s of logs")
        if self.per_span_mib_s_bytes:
            parts.append(f"{self.per_span_mib_s_bytes / MIB:.0f} MiB per MiB/s of spans")
        return " + ".join(parts)


MODELS: dict[str, FootprintModel] = {
    "os-docker": FootprintModel(
        component="os-docker",
        stands_for="the OS and the Docker engine",
        base_bytes=768 * MIB,
        assumptions=(
            "768 MiB for the OS and Docker is an assumption: no published figure was found. "
            "It covers the kernel's own memory, systemd, sshd, the SSM agent, dockerd, "
            "containerd and one containerd-shim per container.",
        ),
    ),
    "grafana": FootprintModel(
        component="grafana",
        stands_for="Grafana",
        base_bytes=512 * MIB,
        sources=(
            f"Grafana, Install Grafana, hardware recommendations: 512 MB minimum ({GRAFANA_INSTALL_URL})",
        ),
        assumptions=("Grafana's memory is taken as constant (dashboards, not ingest, drive it).",),
    ),
    "alloy": FootprintModel(
        component="alloy",
        stands_for="Grafana Alloy (scrape, OTLP and Faro receiver)",
        base_bytes=128 * MIB,
        per_million_series_bytes=11 * GIB,
        per_log_mib_s_bytes=120 * MIB,
        per_span_mib_s_bytes=120 * MIB,
        sources=(
            "Grafana Alloy, Estimate resource usage: 11 GiB per 1 million active series, "
            f"120 MiB per 1 MiB/s of logs ({ALLOY_ESTIMATE_URL})",
        ),
        assumptions=(
            "Alloy's 128 MiB base is an assumption (the page gives only per-volume figures).",
            "Spans are costed like logs (120 MiB per MiB/s): the page gives no traces figure.",
        ),
    ),
    "loki": FootprintModel(
        component="loki",
        stands_for="Loki (monolithic, -target=all)",
        base_bytes=256 * MIB,
        per_log_mib_s_bytes=1 * GIB,
        sources=(
            f"Loki, Deployment modes: monolithic mode for up to ~20 GB/day ({LOKI_MODES_URL})",
        ),
        assumptions=(
            "Loki documents sizing for microservices mode only "
            f"({LOKI_SIZE_URL}); its monolithic memory is assumed to be 256 MiB plus "
            "1 GiB per MiB/s of logs, the ratio Tempo documents for its ingest path.",
        ),
    ),
    "tempo": FootprintModel(
        component="tempo",
        stands_for="Tempo (monolithic)",
        base_bytes=256 * MIB,
        per_span_mib_s_bytes=1 * GIB,
        sources=(
            "Tempo, Size the cluster: distributor 2 GB per 10 MB/s, ingester 4-20 GB per "
            f"3-5 MB/s, i.e. at least 0.2 + 0.8 = 1 GB per MB/s ({TEMPO_SIZE_URL})",
            f"Tempo, Manage trace ingestion: a typical span is ~500 bytes ({TEMPO_SPAN_SIZE_URL})",
        ),
        assumptions=("Tempo's 256 MiB base (idle monolithic process) is an assumption.",),
    ),
}


def model_for(component: str) -> FootprintModel:
    """The model of ``component``; ``ValueError`` naming the known ones otherwise."""
    try:
        return MODELS[component]
    except KeyError:
        raise ValueError(
            f"unknown modelled component {component!r}; known: {', '.join(sorted(MODELS))}"
        ) from None


# -- traffic, read from the real stack ---------------------------------------------------


def _get(url: str, timeout_s: float = 1.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def parse_accepted(metrics_text: str) -> dict[str, float]:
    """``collector_items_accepted_total{signal="..."} N`` lines as ``{signal: N}``."""
    out: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if not line.startswith("collector_items_accepted_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        marker = 'signal="'
        start = labels.find(marker)
        if start < 0:
            continue
        signal_name = labels[start + len(marker) :].split('"', 1)[0]
        try:
            out[signal_name] = float(value)
        except ValueError:
            continue
    return out


class TrafficReader:
    """Polls Prometheus and the collector; keeps the last good values when one is down."""

    def __init__(self, prometheus_url: str | None, collector_url: str | None) -> None:
        self._prom = prometheus_url.rstrip("/") if prometheus_url else None
        self._collector = collector_url.rstrip("/") if collector_url else None
        self._last_counts: dict[str, float] | None = None
        self._last_at = 0.0
        self.traffic = Traffic()

    def _series(self) -> float | None:
        if self._prom is None:
            return None
        body = _get(self._prom + "/api/v1/query?query=prometheus_tsdb_head_series")
        if body is None:
            return None
        try:
            result = json.loads(body)["data"]["result"]
            return float(result[0]["value"][1]) if result else None
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def poll(self) -> Traffic:
        series = self._series()
        spans, logs = self.traffic.spans_per_s, self.traffic.logs_per_s
        if self._collector is not None:
            body = _get(self._collector + "/metrics")
            now = time.monotonic()
            if body is not None:
                counts = parse_accepted(body.decode(errors="replace"))
                if self._last_counts is not None and now > self._last_at:
                    elapsed = now - self._last_at
                    spans = max(0.0, counts.get("spans", 0) - self._last_counts.get("spans", 0))
                    logs = max(0.0, counts.get("logs", 0) - self._last_counts.get("logs", 0))
                    spans, logs = spans / elapsed, logs / elapsed
                self._last_counts, self._last_at = counts, now
        self.traffic = Traffic(
            active_series=series if series is not None else self.traffic.active_series,
            spans_per_s=spans,
            logs_per_s=logs,
        )
        return self.traffic


# -- resident memory ---------------------------------------------------------------------


class ResidentMemory:
    """Anonymous memory held in chunks, every page touched (so it is resident)."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._chunk_bytes = chunk_bytes
        self._chunks: list[mmap.mmap] = []

    @property
    def held_bytes(self) -> int:
        return len(self._chunks) * self._chunk_bytes

    def resize(self, target_bytes: int) -> None:
        want = max(0, target_bytes) // self._chunk_bytes
        while len(self._chunks) > want:
            self._chunks.pop().close()
        while len(self._chunks) < want:
            chunk = mmap.mmap(-1, self._chunk_bytes)
            for offset in range(0, self._chunk_bytes, PAGE_BYTES):
                chunk[offset] = 1
            self._chunks.append(chunk)


def own_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def next_hold(held: int, wanted: int, interval_s: float) -> int:
    """Grow to ``wanted`` at once; shrink by at most ``SHRINK_PER_S`` of ``held`` per second."""
    if wanted >= held:
        return wanted
    return max(wanted, int(held * (1 - SHRINK_PER_S * interval_s)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hold a modelled component's memory")
    parser.add_argument("--component", required=True, choices=sorted(MODELS))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--traffic-factor", type=float, default=1.0)
    parser.add_argument("--prometheus-url")
    parser.add_argument("--collector-url")
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--status-file", help="write the model's inputs and target here (JSON)")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or args.traffic_factor <= 0 or args.interval_s <= 0:
        parser.error("--scale must be in (0, 1]; --traffic-factor and --interval-s positive")
    model = MODELS[args.component]
    reader = TrafficReader(args.prometheus_url, args.collector_url)
    memory = ResidentMemory()
    stop = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interpreter = own_rss_bytes()
    held = 0
    while not stop:
        traffic = reader.poll()
        seen = Traffic(
            traffic.active_series,
            traffic.spans_per_s * args.traffic_factor,
            traffic.logs_per_s * args.traffic_factor,
        )
        modelled = model.bytes_for(seen, args.scale)
        held = next_hold(held, max(0, modelled - interpreter), args.interval_s)
        memory.resize(held)
        if args.status_file:
            status = {
                "component": model.component,
                "modelled_bytes": modelled,
                "held_bytes": memory.held_bytes,
                "rss_bytes": own_rss_bytes(),
                "active_series": seen.active_series,
                "spans_per_s": seen.spans_per_s,
                "logs_per_s": seen.logs_per_s,
                "at": time.time(),
            }
            tmp = args.status_file + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(status, fh)
            os.replace(tmp, args.status_file)
        time.sleep(args.interval_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
