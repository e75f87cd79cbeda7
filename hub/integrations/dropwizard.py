"""Dropwizard Metrics: poll a service's admin ``/metrics`` JSON and publish its gauges, counters, meters, timers and histograms as OTLP metrics.

The document is the one ``metrics-servlets``' ``MetricsServlet`` writes (and Dropwizard's admin
port serves at ``/metrics``): ``version``, then ``gauges`` (``value``), ``counters`` (``count``),
``histograms`` (``count``, ``min``, ``max``, ``mean``, ``stddev``, ``p50`` .. ``p999``), ``meters``
(``count``, ``m1_rate``, ``m5_rate``, ``m15_rate``, ``mean_rate``, ``units``) and ``timers``
(a histogram of durations in ``duration_units`` plus a meter in ``rate_units``).

Mapping (one OTLP ``ExportMetricsServiceRequest`` per poll, resource ``service.name`` = the
service, ``experiment.id`` when given, scope ``gameday-hub.dropwizard``):

- gauge -> gauge ``<name>``; values that are not finite numbers (``"NaN"``, strings, lists) are skipped.
- counter -> cumulative sum ``<name>``, **not** monotonic: a Dropwizard counter can be decremented
  (``activeRequests`` is the classic example), so it is an up-down counter in OTLP terms.
- meter -> cumulative monotonic sum ``<name>`` (the count) and gauges ``<name>.m1_rate``,
  ``.m5_rate``, ``.m15_rate``, ``.mean_rate`` in the meter's unit (events/second -> ``{event}/s``).
- timer, histogram -> summary ``<name>`` with the count, quantiles 0.5, 0.75, 0.95, 0.98, 0.99,
  0.999 and ``sum`` = mean x count (Dropwizard does not expose the sum; with its decaying
  reservoir this is an estimate), plus gauges ``<name>.min``, ``.max``, ``.mean``, ``.stddev``;
  a timer's values stay in its ``duration_units`` (the metric unit says which) and it also gets
  the meter's rate gauges.

The hub's metrics sink stores these in ``otel_metrics_gauge``, ``otel_metrics_sum`` and
``otel_metrics_summary``.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from hub.errors import HubError, UserError
from hub.names import ATTR_EXPERIMENT_ID

__all__ = ["dropwizard_to_otlp", "fetch", "poll", "QUANTILES", "SCOPE"]

SCOPE = "gameday-hub.dropwizard"
#: Dropwizard snapshot keys and the quantile each stands for.
QUANTILES = (("p50", 0.5), ("p75", 0.75), ("p95", 0.95), ("p98", 0.98), ("p99", 0.99), ("p999", 0.999))
_CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_DURATION_UNITS = {"nanoseconds": "ns", "microseconds": "us", "milliseconds": "ms", "seconds": "s",
                   "minutes": "min", "hours": "h", "days": "d"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _rate_unit(units: str) -> str:
    # "events/second" -> "{event}/s", "calls/millisecond" -> "{call}/ms"
    what, _, per = (units or "").partition("/")
    what = what[:-1] if what.endswith("s") else what
    return f"{{{what or 'event'}}}/{_DURATION_UNITS.get(per + 's', _DURATION_UNITS.get(per, per or 's'))}"


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def dropwizard_to_otlp(doc: dict, *, service: str, experiment_id: str = "", now_ns: int | None = None,
                       start_ns: int | None = None) -> ExportMetricsServiceRequest:
    """One OTLP export of everything usable in a Dropwizard metrics document (see the module doc).

    ``now_ns`` is the time of every point (default: now); ``start_ns`` the start of the
    cumulative series (default ``now_ns``; the poller passes the time it started).
    """
    if not isinstance(doc, dict) or not any(k in doc for k in ("gauges", "counters", "histograms", "meters", "timers")):
        raise UserError("not a Dropwizard metrics document (no gauges, counters, histograms, meters or timers)")
    now_ns = now_ns if now_ns is not None else time.time_ns()
    start_ns = start_ns if start_ns is not None else now_ns
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(_kv("service.name", service))
    if experiment_id:
        rm.resource.attributes.append(_kv(ATTR_EXPERIMENT_ID, experiment_id))
    sm = rm.scope_metrics.add()
    sm.scope.name = SCOPE
    sm.scope.version = str(doc.get("version") or "")
    metrics = sm.metrics

    def gauge(name: str, value: Any, unit: str = "", description: str = "") -> None:
        v = _number(value)
        if v is None:
            return
        m = metrics.add(name=name, unit=unit, description=description)
        m.gauge.data_points.add(time_unix_nano=now_ns, as_double=v)

    def total(name: str, count: Any, monotonic: bool, unit: str = "", description: str = "") -> None:
        v = _number(count)
        if v is None:
            return
        m = metrics.add(name=name, unit=unit, description=description)
        m.sum.aggregation_temporality = _CUMULATIVE
        m.sum.is_monotonic = monotonic
        m.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns, as_double=v)

    def rates(name: str, body: dict, units: str) -> None:
        unit = _rate_unit(units)
        for key in ("m1_rate", "m5_rate", "m15_rate", "mean_rate"):
            gauge(f"{name}.{key}", body.get(key), unit)

    def summary(name: str, body: dict, unit: str, kind: str) -> None:
        count = _number(body.get("count"))
        if count is None:
            return
        mean = _number(body.get("mean")) or 0.0
        m = metrics.add(name=name, unit=unit, description=f"Dropwizard {kind} (sum = mean x count, an estimate)")
        dp = m.summary.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns,
                                       count=int(count), sum=mean * count)
        for key, q in QUANTILES:
            v = _number(body.get(key))
            if v is not None:
                dp.quantile_values.add(quantile=q, value=v)
        for key in ("min", "max", "mean", "stddev"):
            gauge(f"{name}.{key}", body.get(key), unit)

    for name, body in (doc.get("gauges") or {}).items():
        if isinstance(body, dict):
            gauge(name, body.get("value"), description="Dropwizard gauge")
    for name, body in (doc.get("counters") or {}).items():
        if isinstance(body, dict):
            total(name, body.get("count"), monotonic=False, description="Dropwizard counter")
    for name, body in (doc.get("meters") or {}).items():
        if isinstance(body, dict):
            units = str(body.get("units") or "events/second")
            total(name, body.get("count"), monotonic=True, unit="{" + units.partition("/")[0].rstrip("s") + "}",
                  description="Dropwizard meter count")
            rates(name, body, units)
    for name, body in (doc.get("histograms") or {}).items():
        if isinstance(body, dict):
            summary(name, body, "", "histogram")
    for name, body in (doc.get("timers") or {}).items():
        if isinstance(body, dict):
            unit = _DURATION_UNITS.get(str(body.get("duration_units") or ""), str(body.get("duration_units") or ""))
            summary(name, body, unit, "timer")
            rates(name, body, str(body.get("rate_units") or "calls/second"))
    return request


#: Largest metrics document read, and its deepest nesting (a Dropwizard document has four levels).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DOCUMENT_DEPTH = 64


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; ``UserError`` otherwise (no local files)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        raise UserError(f"not a URL: {url!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UserError(f"{url}: only http:// and https:// URLs of a metrics endpoint are read")
    return url


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise HubError(f"{req.full_url} redirects to {newurl}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    _HttpOnlyRedirects(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def fetch(url: str, timeout: float = 10.0) -> dict:
    """GET the metrics document; ``HubError`` with one clear line when it cannot be had. Only http(s)
    URLs are read (also after a redirect), at most ``MAX_DOCUMENT_BYTES``."""
    from hub.records.decode import too_deep

    check_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _opener().open(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise HubError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubError(f"cannot reach {url}: {reason}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise HubError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    if too_deep(body, MAX_DOCUMENT_DEPTH):
        raise HubError(f"{url} answered JSON nested more than {MAX_DOCUMENT_DEPTH} levels deep")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise HubError(f"{url} did not answer JSON (is it the admin /metrics endpoint?)") from None
    if not isinstance(doc, dict):
        raise HubError(f"{url} did not answer a JSON object")
    return doc


def poll(url: str, *, service: str, bootstrap: str, topic: str, interval: float = 10.0, count: int | None = None,
         experiment_id: str = "", progress: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Fetch ``url`` every ``interval`` seconds (``count`` times, or until interrupted) and publish
    each document to ``topic`` as ``otlp_proto``. Returns the number of polls published.

    The first fetch must succeed (a wrong URL is a mistake to report at once); later failures are
    reported through ``progress`` and polling goes on.
    """
    from hub.producer import send_records

    if interval <= 0:
        raise UserError("--interval must be positive")
    if count is not None and count <= 0:
        raise UserError("--count must be a positive number")
    start_ns = time.time_ns()
    done = 0
    while count is None or done < count:
        started = time.monotonic()
        try:
            doc = fetch(url)
        except HubError as exc:
            if done == 0:
                raise
            if progress:
                progress(f"poll failed, trying again in {interval:g}s: {exc}")
        else:
            request = dropwizard_to_otlp(doc, service=service, experiment_id=experiment_id, start_ns=start_ns)
            send_records(bootstrap, topic, [(service.encode(), request.SerializeToString())])
            done += 1
            if progress:
                n = len(request.resource_metrics[0].scope_metrics[0].metrics)
                progress(f"poll {done}: {n} metrics from {url} sent to {topic}")
        if count is not None and done >= count:
            break
        sleep(max(0.0, interval - (time.monotonic() - started)))
    return done
