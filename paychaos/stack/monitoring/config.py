"""Render ``prometheus.yml`` and ``alertmanager.yml`` for the embedded stack.

Pure functions from frozen settings to YAML text: nothing here touches the disk
except :func:`write_config`. Every target must be on loopback unless its host is
in an explicit ``allowed_hosts`` allow-list; otherwise :class:`InvalidInput`
names the offending target.

Example::

    settings = PrometheusSettings(
        targets=(ScrapeTarget("payment-api", "127.0.0.1", 8000),),
        rules_dir=Path("stack/prometheus/rules"),
        alertmanager_port=9093,
    )
    write_config(render_prometheus_config(settings), data_dir / "prometheus.yml")
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.service import is_loopback

#: Where the alert rules of the project live (``stack/prometheus/rules``).
RULES_DIR = Path(__file__).resolve().parent.parent / "prometheus" / "rules"
#: Scrape and rule-evaluation interval of the embedded stack: short, because
#: paychaos measures time-to-detect.
EMBEDDED_INTERVAL_S = 5.0
#: Scrape interval of the seed's production setup (Alloy scrapes every 15 s).
#: The rule files document how their windows map to it.
PRODUCTION_INTERVAL_S = 15.0

_JOB_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: a name, where to scrape it, and the metrics path.

    Example: ``ScrapeTarget("payment-api", "127.0.0.1", 8000)``.
    """

    job: str
    host: str
    port: int
    metrics_path: str = "/metrics"

    @property
    def address(self) -> str:
        """``host:port`` as Prometheus wants it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class PrometheusSettings:
    """Everything ``prometheus.yml`` depends on.

    ``scrape_interval_s``/``evaluation_interval_s`` default to the embedded 5 s;
    use :data:`PRODUCTION_INTERVAL_S` (15 s) to mirror the seed's production
    setup. ``scrape_timeout_s`` defaults to the scrape interval (capped at 10 s).
    """

    targets: tuple[ScrapeTarget, ...]
    alertmanager_port: int | None = None
    alertmanager_host: str = "127.0.0.1"
    rules_dir: Path | None = RULES_DIR
    scrape_interval_s: float = EMBEDDED_INTERVAL_S
    evaluation_interval_s: float = EMBEDDED_INTERVAL_S
    scrape_timeout_s: float | None = None
    external_labels: tuple[tuple[str, str], ...] = ()
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class AlertmanagerSettings:
    """Everything ``alertmanager.yml`` depends on.

    ``webhook_url`` is the collector's receiver, e.g.
    ``http://127.0.0.1:8102/alertmanager/webhook``. Short ``group_wait_s`` and
    ``group_interval_s`` make the first notification (and resolutions) fast.
    """

    webhook_url: str
    receiver: str = "paychaos-collector"
    group_by: tuple[str, ...] = ("alertname", "method", "job")
    group_wait_s: float = 1.0
    group_interval_s: float = 5.0
    repeat_interval_s: float = 3600.0
    send_resolved: bool = True
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)


def format_duration(seconds: float) -> str:
    """Prometheus duration text for a positive number of seconds (``5.0`` -> ``"5s"``).

    >>> format_duration(0.5), format_duration(90), format_duration(3600)
    ('500ms', '90s', '3600s')
    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"a duration must be a positive number of seconds, got {seconds!r}")
    millis = round(seconds * 1000)
    if millis <= 0:
        raise InvalidInput(f"duration {seconds!r} s is shorter than 1 ms")
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"


def check_host_allowed(host: str, what: str, allowed_hosts: Collection[str] = ()) -> None:
    """Raise :class:`InvalidInput` naming ``what`` unless ``host`` is loopback or allow-listed."""
    if not host:
        raise InvalidInput(f"{what}: no host given")
    if is_loopback(host) or host in allowed_hosts:
        return
    raise InvalidInput(
        f"{what}: host {host!r} is not loopback; pass it in allowed_hosts to target it"
    )


def _check_port(port: int, what: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInput(f"{what}: port must be an integer in 1..65535, got {port!r}")


def _validate_target(target: ScrapeTarget, allowed_hosts: Collection[str]) -> None:
    what = f"scrape target {target.job!r} ({target.host}:{target.port})"
    if not _JOB_NAME.match(target.job):
        raise InvalidInput(f"{what}: job name must match {_JOB_NAME.pattern}")
    check_host_allowed(target.host, what, allowed_hosts)
    _check_port(target.port, what)
    if not target.metrics_path.startswith("/"):
        raise InvalidInput(f"{what}: metrics path must start with '/', got {target.metrics_path!r}")


def prometheus_config(settings: PrometheusSettings) -> dict[str, object]:
    """The ``prometheus.yml`` document as plain data (see :func:`render_prometheus_config`)."""
    jobs = [t.job for t in settings.targets]
    duplicates = sorted({j for j in jobs if jobs.count(j) > 1})
    if duplicates:
        raise InvalidInput(f"scrape job names must be unique; repeated: {', '.join(duplicates)}")
    for target in settings.targets:
        _validate_target(target, settings.allowed_hosts)

    timeout_s = settings.scrape_timeout_s
    if timeout_s is None:
        timeout_s = min(settings.scrape_interval_s, 10.0)
    if timeout_s > settings.scrape_interval_s:
        raise InvalidInput(
            f"scrape timeout {timeout_s} s is longer than the scrape interval "
            f"{settings.scrape_interval_s} s"
        )
    global_section: dict[str, object] = {
        "scrape_interval": format_duration(settings.scrape_interval_s),
        "scrape_timeout": format_duration(timeout_s),
        "evaluation_interval": format_duration(settings.evaluation_interval_s),
    }
    if settings.external_labels:
        global_section["external_labels"] = dict(settings.external_labels)

    document: dict[str, object] = {"global": global_section}
    if settings.rules_dir is not None:
        document["rule_files"] = [str(Path(settings.rules_dir).resolve() / "*.yml")]
    if settings.alertmanager_port is not None:
        what = f"alertmanager ({settings.alertmanager_host}:{settings.alertmanager_port})"
        check_host_allowed(settings.alertmanager_host, what, settings.allowed_hosts)
        _check_port(settings.alertmanager_port, what)
        am = ScrapeTarget("alertmanager", settings.alertmanager_host, settings.alertmanager_port)
        document["alerting"] = {
            "alertmanagers": [
                {"scheme": "http", "timeout": "5s", "static_configs": [{"targets": [am.address]}]}
            ]
        }
    document["scrape_configs"] = [
        {
            "job_name": target.job,
            "metrics_path": target.metrics_path,
            "scheme": "http",
            "static_configs": [{"targets": [target.address]}],
        }
        for target in settings.targets
    ]
    return document


def render_prometheus_config(settings: PrometheusSettings) -> str:
    """``prometheus.yml`` text: global intervals, rule files, Alertmanager, one job per target.

    Raises :class:`InvalidInput` for a non-loopback target that is not in
    ``settings.allowed_hosts``, a bad port, or a repeated job name.
    """
    return _dump(prometheus_config(settings))


def alertmanager_config(settings: AlertmanagerSettings) -> dict[str, object]:
    """The ``alertmanager.yml`` document as plain data (see :func:`render_alertmanager_config`)."""
    url = urlsplit(settings.webhook_url)
    what = f"webhook {settings.webhook_url!r}"
    if url.scheme not in ("http", "https"):
        raise InvalidInput(f"{what}: URL scheme must be http or https")
    try:
        port = url.port
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from exc
    check_host_allowed(url.hostname or "", what, settings.allowed_hosts)
    if port is not None:
        _check_port(port, what)
    if not settings.group_by:
        raise InvalidInput("alertmanager group_by must name at least one label")
    return {
        "route": {
            "receiver": settings.receiver,
            "group_by": list(settings.group_by),
            "group_wait": format_duration(settings.group_wait_s),
            "group_interval": format_duration(settings.group_interval_s),
            "repeat_interval": format_duration(settings.repeat_interval_s),
        },
        "receivers": [
            {
                "name": settings.receiver,
                "webhook_configs": [
                    {"url": settings.webhook_url, "send_resolved": settings.send_resolved}
                ],
            }
        ],
    }


def render_alertmanager_config(settings: AlertmanagerSettings) -> str:
    """``alertmanager.yml`` text: one route to the collector's webhook receiver.

    Raises :class:`InvalidInput` for a webhook that is not on loopback and not in
    ``settings.allowed_hosts``.
    """
    return _dump(alertmanager_config(settings))


def write_config(text: str, path: Path) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, then rename); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _dump(document: dict[str, object]) -> str:
    header = "# Generated by paychaos (paychaos.stack.monitoring.config); do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
