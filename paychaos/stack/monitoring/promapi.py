"""A small synchronous client for the Prometheus and Alertmanager HTTP APIs.

:class:`MetricsSource` is the read-only interface the rest of paychaos needs
(instant queries, range queries, active alerts). :class:`PrometheusClient`
implements it against a real server; :class:`paychaos.stack.monitoring.memory.InMemoryMetricsSource`
implements it from canned data for tests. :class:`AlertmanagerClient` reads what
Alertmanager holds.

Every failure (connection refused, HTTP error, an API ``"status": "error"``,
malformed JSON) becomes a :class:`StackError` naming the URL. The HTTP call
itself is an injectable :class:`Transport`, so a test can answer without a server.

Example::

    prom = PrometheusClient("http://127.0.0.1:9090")
    for labels, value in prom.query('sum by (method) (rate(shop_payments_total[1m]))'):
        print(labels["method"], value)
    wait_until(prom, 'ALERTS{alertstate="firing"}', bool, timeout_s=60)
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode

from paychaos.contracts.errors import ExpectationFailed, InvalidInput, StackError
from paychaos.contracts.metrics import (
    ActiveAlert,
    AlertmanagerStatus,
    MetricsSource,
    NotifiedAlert,
    RuleInfo,
    Sample,
    Series,
    TargetHealth,
    parse_time,
)

# ---------------------------------------------------------------- interface


class HttpResponse(NamedTuple):
    status: int
    body: bytes


class Transport(Protocol):
    """Performs one HTTP request; raises :class:`StackError` when no response arrives."""

    def __call__(self, method: str, url: str, timeout_s: float) -> HttpResponse: ...


def urllib_transport(method: str, url: str, timeout_s: float) -> HttpResponse:
    """The default :class:`Transport`, on :mod:`urllib.request` (no proxy, loopback use)."""
    request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return HttpResponse(response.status, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResponse(exc.code, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StackError(f"{method} {url} failed: {reason}") from exc


# ------------------------------------------------------------------ clients


class _ApiClient:
    def __init__(self, base_url: str, timeout_s: float, transport: Transport | None) -> None:
        if not re.match(r"^https?://", base_url):
            raise InvalidInput(f"API base URL must start with http(s)://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._transport: Transport = transport or urllib_transport

    def _url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{query}"

    def _request(self, method: str, url: str) -> Any:
        response = self._transport(method, url, self.timeout_s)
        try:
            payload = json.loads(response.body) if response.body.strip() else None
        except ValueError as exc:
            if response.status >= 400:
                text = response.body[:200].decode("utf-8", "replace").strip()
                raise StackError(f"{method} {url}: HTTP {response.status}: {text}") from exc
            raise StackError(f"{method} {url}: response is not JSON") from exc
        if isinstance(payload, dict) and payload.get("status") == "error":
            raise StackError(
                f"{method} {url}: {payload.get('errorType', 'error')}: {payload.get('error', '')}"
            )
        if response.status >= 400:
            raise StackError(f"{method} {url}: HTTP {response.status}: {payload}")
        return payload

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._request("GET", self._url(path, params))


class PrometheusClient(_ApiClient):
    """The Prometheus HTTP API (``/api/v1``); implements :class:`MetricsSource`.

    Example::

        prom = PrometheusClient("http://127.0.0.1:9090", timeout_s=5)
        prom.query('up{job="payment-api"}')      # [Sample({'job': ...}, 1.0)]
        [a.labels["method"] for a in prom.alerts() if a.firing]
    """

    def __init__(
        self, base_url: str, timeout_s: float = 5.0, transport: Transport | None = None
    ) -> None:
        super().__init__(base_url, timeout_s, transport)

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        params = {"query": expr}
        if at is not None:
            params["time"] = _format_time(at)
        url = self._url("/api/v1/query", params)
        data = _data(self._request("GET", url), url)
        kind, result = data.get("resultType"), data.get("result", [])
        try:
            if kind == "vector":
                return [Sample(dict(r["metric"]), _float(r["value"][1])) for r in result]
            if kind == "scalar":
                return [Sample({}, _float(result[1]))]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise StackError(f"GET {url}: unexpected {kind} result: {result!r:.200}") from exc
        raise InvalidInput(f"{expr!r} returns a {kind}, not an instant vector; use query_range")

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        if step_s <= 0 or end < start:
            raise InvalidInput(f"query_range needs start <= end and step_s > 0 (expr {expr!r})")
        params = {
            "query": expr,
            "start": _format_time(start),
            "end": _format_time(end),
            "step": f"{step_s:g}",
        }
        url = self._url("/api/v1/query_range", params)
        data = _data(self._request("GET", url), url)
        try:
            return [
                Series(
                    dict(r["metric"]),
                    tuple((float(ts), _float(v)) for ts, v in r["values"]),
                )
                for r in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise StackError(f"GET {url}: unexpected range result") from exc

    def alerts(self) -> list[ActiveAlert]:
        url = self._url("/api/v1/alerts")
        data = _data(self._request("GET", url), url)
        alerts = []
        for raw in data.get("alerts", []):
            labels = dict(raw.get("labels", {}))
            value = raw.get("value")
            alerts.append(
                ActiveAlert(
                    name=labels.get("alertname", ""),
                    state=raw.get("state", ""),
                    labels=labels,
                    annotations=dict(raw.get("annotations", {})),
                    active_at=parse_time(raw.get("activeAt")),
                    value=None if value is None else _float(value),
                )
            )
        return alerts

    def rules(self) -> list[RuleInfo]:
        """Every loaded recording and alerting rule, with its health."""
        url = self._url("/api/v1/rules")
        data = _data(self._request("GET", url), url)
        return [
            RuleInfo(
                group=group.get("name", ""),
                name=rule.get("name", ""),
                kind=rule.get("type", ""),
                query=rule.get("query", ""),
                health=rule.get("health", ""),
                labels=dict(rule.get("labels") or {}),
                duration_s=float(rule.get("duration", 0.0)),
                last_error=rule.get("lastError", ""),
            )
            for group in data.get("groups", [])
            for rule in group.get("rules", [])
        ]

    def targets(self) -> list[TargetHealth]:
        """Active scrape targets and their health."""
        url = self._url("/api/v1/targets", {"state": "active"})
        data = _data(self._request("GET", url), url)
        return [
            TargetHealth(
                job=raw.get("labels", {}).get("job", raw.get("scrapePool", "")),
                instance=raw.get("labels", {}).get("instance", ""),
                health=raw.get("health", "unknown"),
                scrape_url=raw.get("scrapeUrl", ""),
                last_error=raw.get("lastError", ""),
            )
            for raw in data.get("activeTargets", [])
        ]

    def tsdb_status(self) -> dict[str, Any]:
        """The head block's cardinality statistics (``/api/v1/status/tsdb``): ``headStats``,
        ``seriesCountByMetricName``, ``labelValueCountByLabelName``... (top 10 of each)."""
        url = self._url("/api/v1/status/tsdb")
        return _data(self._request("GET", url), url)

    def label_names(self, match: str, start: float, end: float) -> list[str]:
        """Label names of the series ``match`` selects between ``start`` and ``end``."""
        params = {"match[]": match, "start": _format_time(start), "end": _format_time(end)}
        url = self._url("/api/v1/labels", params)
        payload = self._request("GET", url)
        names = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(names, list):
            raise StackError(f"GET {url}: expected a list of label names")
        return [str(name) for name in names]

    def reload(self) -> None:
        """Ask Prometheus to re-read its config and rules (needs ``--web.enable-lifecycle``)."""
        self._request("POST", self._url("/-/reload"))

    def wait_until(
        self,
        expr: str,
        predicate: Callable[[list[Sample]], bool],
        timeout_s: float = 60.0,
        poll_s: float = 1.0,
    ) -> list[Sample]:
        """:func:`wait_until` on this client."""
        return wait_until(self, expr, predicate, timeout_s=timeout_s, poll_s=poll_s)


class AlertmanagerClient(_ApiClient):
    """The Alertmanager HTTP API (``/api/v2``).

    Example::

        am = AlertmanagerClient("http://127.0.0.1:9093")
        [a.labels["method"] for a in am.alerts() if a.name == "PaymentErrorRatioHigh"]
    """

    def __init__(
        self, base_url: str, timeout_s: float = 5.0, transport: Transport | None = None
    ) -> None:
        super().__init__(base_url, timeout_s, transport)

    def alerts(self) -> list[NotifiedAlert]:
        """Alerts Alertmanager currently holds (active, silenced or inhibited)."""
        url = self._url("/api/v2/alerts")
        payload = self._request("GET", url)
        if not isinstance(payload, list):
            raise StackError(f"GET {url}: expected a list of alerts")
        return [
            NotifiedAlert(
                name=raw.get("labels", {}).get("alertname", ""),
                state=raw.get("status", {}).get("state", ""),
                labels=dict(raw.get("labels", {})),
                annotations=dict(raw.get("annotations", {})),
                starts_at=parse_time(raw.get("startsAt")),
                ends_at=parse_time(raw.get("endsAt")),
                fingerprint=raw.get("fingerprint", ""),
                receivers=tuple(r.get("name", "") for r in raw.get("receivers", [])),
            )
            for raw in payload
        ]

    def status(self) -> AlertmanagerStatus:
        """Version, cluster status (``disabled`` when clustering is off), uptime and config."""
        url = self._url("/api/v2/status")
        payload = self._request("GET", url)
        if not isinstance(payload, dict):
            raise StackError(f"GET {url}: expected a status object")
        return AlertmanagerStatus(
            version=payload.get("versionInfo", {}).get("version", ""),
            cluster_status=payload.get("cluster", {}).get("status", ""),
            uptime=parse_time(payload.get("uptime")),
            config_yaml=payload.get("config", {}).get("original", ""),
        )


# ------------------------------------------------------------------ helpers


def wait_until(
    source: MetricsSource,
    expr: str,
    predicate: Callable[[list[Sample]], bool],
    *,
    timeout_s: float = 60.0,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Sample]:
    """Poll ``source.query(expr)`` until ``predicate(samples)`` holds; return those samples.

    Raises :class:`ExpectationFailed` (with the last result) after ``timeout_s``;
    query errors propagate as :class:`StackError`. At least one query is made.

    Example::

        wait_until(prom, 'ALERTS{alertname="ServiceDown",alertstate="firing"}', bool,
                   timeout_s=45, poll_s=1)
    """
    if timeout_s < 0 or poll_s <= 0:
        raise InvalidInput("wait_until needs timeout_s >= 0 and poll_s > 0")
    deadline = clock() + timeout_s
    while True:
        samples = source.query(expr)
        if predicate(samples):
            return samples
        remaining = deadline - clock()
        if remaining <= 0:
            shown = ", ".join(f"{dict(s.labels)}={s.value:g}" for s in samples[:5]) or "no samples"
            raise ExpectationFailed(
                f"{expr!r} did not meet the condition within {timeout_s:g} s (last: {shown})"
            )
        sleep(min(poll_s, remaining))


def _format_time(unix_s: float) -> str:
    if not math.isfinite(unix_s):
        raise InvalidInput(f"time must be a finite unix timestamp, got {unix_s!r}")
    return f"{unix_s:.3f}"


def _float(raw: object) -> float:
    return float(str(raw))  # the APIs send "1.5", "NaN", "+Inf"


def _data(payload: Any, url: str) -> dict[str, Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise StackError(f"GET {url}: response has no data object")
    return data


__all__: Sequence[str] = (
    "ActiveAlert",
    "AlertmanagerClient",
    "AlertmanagerStatus",
    "HttpResponse",
    "MetricsSource",
    "NotifiedAlert",
    "PrometheusClient",
    "RuleInfo",
    "Sample",
    "Series",
    "TargetHealth",
    "Transport",
    "parse_time",
    "urllib_transport",
    "wait_until",
)
