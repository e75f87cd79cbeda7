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

Cumulative series start when the process began counting (``jvm.attribute.uptime``, else its
first scrape; ``ProcessStarts`` keeps it across imports); integers go out exactly (``as_int``);
tag-like names (``name{k=v,...}``, ``name[k=v,...]``, ``name[k:v,...]``, ``name.k=v.more``) become
data point attributes (``split_name``).

The hub's metrics sink stores these in ``otel_metrics_gauge``, ``otel_metrics_sum`` and
``otel_metrics_summary``.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
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


def _number(value: Any) -> float | int | None:
    """A finite number from the document; integers stay Python ints (exact, whatever their size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value
    return value if math.isfinite(value) else None


_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _set_value(point, value: float | int) -> None:
    """``as_int`` for an integer that fits (exact), else ``as_double``."""
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        point.as_int = value
    else:
        point.as_double = float(value)


#: Tag-like metric names: ``name{k=v,...}`` / ``name[k=v,...]`` / ``name[k:v,...]`` (a bracketed list
#: at the end), and ``name.k=v.more`` (dotted segments holding ``=``).
_BRACKETED = re.compile(r"^(?P<base>[^\[\]{}]+)(?:\[(?P<square>[^\[\]]*)\]|\{(?P<curly>[^{}]*)\})$")


def split_name(name: str) -> tuple[str, dict[str, str]]:
    """``(metric name, attributes)`` for a tag-like name (see ``_BRACKETED``); a name that follows
    none of the conventions (or whose tags do not all read as ``key=value``/``key:value``) stays whole."""
    match = _BRACKETED.match(name)
    if match:
        body = match.group("square") if match.group("square") is not None else match.group("curly")
        tags: dict[str, str] = {}
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                key, sep, value = item.partition(":")
            key, value = key.strip(), value.strip().strip('"')
            if not sep or not key:
                return name, {}
            tags[key] = value
        base = match.group("base").strip().rstrip(".")
        return (base, tags) if tags and base else (name, {})
    if "=" in name:
        parts = name.split(".")
        tags = {}
        kept = []
        for part in parts:
            key, sep, value = part.partition("=")
            if sep and key:
                tags[key] = value
            else:
                kept.append(part)
        if tags and kept and all(kept):
            return ".".join(kept), tags
    return name, {}


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

    def add(name: str | tuple[str, dict], unit: str, description: str):
        base, tags = split_name(name) if isinstance(name, str) else name
        metric = metrics.add(name=base, unit=unit, description=description)
        return metric, [_kv(k, v) for k, v in tags.items()]

    def gauge(name: str | tuple[str, dict], value: Any, unit: str = "", description: str = "") -> None:
        v = _number(value)
        if v is None:
            return
        m, tags = add(name, unit, description)
        _set_value(m.gauge.data_points.add(time_unix_nano=now_ns, attributes=tags), v)

    def total(name: str, count: Any, monotonic: bool, unit: str = "", description: str = "") -> None:
        v = _number(count)
        if v is None:
            return
        m, tags = add(name, unit, description)
        m.sum.aggregation_temporality = _CUMULATIVE
        m.sum.is_monotonic = monotonic
        _set_value(m.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns, attributes=tags), v)

    def rates(name: str, body: dict, units: str) -> None:
        unit = _rate_unit(units)
        base, tags = split_name(name)
        for key in ("m1_rate", "m5_rate", "m15_rate", "mean_rate"):
            gauge((f"{base}.{key}", tags), body.get(key), unit)

    def summary(name: str, body: dict, unit: str, kind: str) -> None:
        count = _number(body.get("count"))
        if count is None or count < 0:
            return
        mean = _number(body.get("mean")) or 0.0
        m, tags = add(name, unit, f"Dropwizard {kind} (sum = mean x count, an estimate)")
        dp = m.summary.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns, attributes=tags,
                                       count=min(int(count), 2 ** 64 - 1), sum=float(mean) * count)
        for key, q in QUANTILES:
            v = _number(body.get(key))
            if v is not None:
                dp.quantile_values.add(quantile=q, value=v)
        base, tags = split_name(name)
        for key in ("min", "max", "mean", "stddev"):
            gauge((f"{base}.{key}", tags), body.get(key), unit)

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


#: The gauges ``JvmAttributeGaugeSet`` registers under ``jvm.attribute``: the process's uptime (ms)
#: and its name (``pid@host``), which tells one process from the next.
UPTIME_GAUGE = "jvm.attribute.uptime"
PROCESS_GAUGE = "jvm.attribute.name"


def _gauge_value(doc: dict, name: str) -> Any:
    body = (doc.get("gauges") or {}).get(name)
    return body.get("value") if isinstance(body, dict) else None


class ProcessStarts:
    """When each scraped process began counting, kept in a JSON file across imports.

    The start of the cumulative series is the process's own start (now - ``jvm.attribute.uptime``)
    when the document has it, else the time of the first scrape of that process. A process is
    told by ``jvm.attribute.name`` (``pid@host``) when present; a lower uptime than before is a
    restart too. The start found for a process is kept, so every poll and every import of it
    carries the same start (one series, no false resets).
    """

    def __init__(self, path: Path | None):
        self.path = path

    def _load(self) -> dict:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def start_ns(self, key: str, doc: dict, now_ns: int) -> int:
        data = self._load()
        uptime = _number(_gauge_value(doc, UPTIME_GAUGE))
        process = _gauge_value(doc, PROCESS_GAUGE)
        process = process if isinstance(process, str) else ""
        seen = data.get(key) if isinstance(data.get(key), dict) else {}
        same = bool(seen) and seen.get("process", "") == process and isinstance(seen.get("start_ns"), int)
        if same and uptime is not None and isinstance(seen.get("uptime_ms"), (int, float)) and uptime < seen["uptime_ms"]:
            same = False  # the uptime went back: a new process under the same name
        if same:
            start = seen["start_ns"]
        elif uptime is not None and uptime >= 0:
            start = now_ns - int(uptime * 1_000_000)
        else:
            start = now_ns
        data[key] = {"process": process, "start_ns": start,
                     "uptime_ms": uptime if uptime is not None else None}
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, sort_keys=True))
                tmp.replace(self.path)
            except OSError:
                pass  # the start then holds for this import only
        return start


def check_experiment(settings, experiment_id: str) -> None:
    """``UserError`` (``UnknownExperiment``) unless the experiment exists, as every command refuses."""
    from hub.experiments.service import ExperimentService

    service = ExperimentService(settings)
    try:
        service.get(experiment_id)
    finally:
        service.close()


def poll(url: str, *, service: str, bootstrap: str, topic: str, interval: float = 10.0, count: int | None = None,
         experiment_id: str = "", progress: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] = time.sleep, starts_path: Path | None = None) -> int:
    """Fetch ``url`` every ``interval`` seconds (``count`` times, or until interrupted) and publish
    each document to ``topic`` as ``otlp_proto``. Returns the number of polls published.

    The first fetch must succeed (a wrong URL is a mistake to report at once); later failures are
    reported through ``progress`` and polling goes on. ``starts_path`` keeps each process's start
    across imports (``ProcessStarts``).
    """
    from hub.producer import send_records

    if interval <= 0:
        raise UserError("--interval must be positive")
    if count is not None and count <= 0:
        raise UserError("--count must be a positive number")
    starts = ProcessStarts(starts_path)
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
            now_ns = time.time_ns()
            start_ns = starts.start_ns(f"{service} {url}", doc, now_ns)
            request = dropwizard_to_otlp(doc, service=service, experiment_id=experiment_id, now_ns=now_ns,
                                         start_ns=start_ns)
            send_records(bootstrap, topic, [(service.encode(), request.SerializeToString())])
            done += 1
            if progress:
                n = len(request.resource_metrics[0].scope_metrics[0].metrics)
                progress(f"poll {done}: {n} metrics from {url} sent to {topic}")
        if count is not None and done >= count:
            break
        sleep(max(0.0, interval - (time.monotonic() - started)))
    return done
