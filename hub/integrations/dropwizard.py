"""Dropwizard Metrics: poll a service's admin ``/metrics`` JSON and publish its gauges, counters, meters, timers and histograms as OTLP metrics.

The document is the one ``metrics-servlets``' ``MetricsServlet`` writes (and Dropwizard's admin
port serves at ``/metrics``): ``version``, then ``gauges`` (``value``), ``counters`` (``count``),
``histograms`` (``count``, ``min``, ``max``, ``mean``, ``stddev``, ``p50`` .. ``p999``), ``meters``
(``count``, ``m1_rate``, ``m5_rate``, ``m15_rate``, ``mean_rate``, ``units``) and ``timers``
(a histogram of durations in ``duration_units`` plus a meter in ``rate_units``).

Mapping (OTLP ``ExportMetricsServiceRequest``s, cut to the record limit by ``split_request``,
resource ``service.name`` = the service, ``experiment.id`` when given, scope ``gameday-hub.dropwizard``):

- gauge -> gauge ``<name>``; NaN and infinities are kept (Jackson writes them ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``); values that are no number (text, lists) are left out, and
  unreadable metrics skipped, each named with its reason (``skipped``).
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
first scrape, which then carries no cumulative point; a count going down is a new process;
``ProcessStarts`` keeps it across imports); integers go out exactly (``as_int``);
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
from dataclasses import dataclass
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


#: How Jackson writes a double that is not finite (``MetricsServlet`` quotes them: ``"NaN"``).
_NOT_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: The reason a gauge whose value is no number is left out (text, lists ... are common gauges).
NOT_A_NUMBER = "gauge value is not a number:"


def _gauge_number(value: Any) -> float | int | None:
    """A gauge's value: a number, NaN and the infinities included (as JSON tokens or Jackson's strings)."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return _NOT_FINITE.get(value.strip())
    return _number(value)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


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
            inner = split_name(part) if _BRACKETED.match(part) else (part, {})
            if inner[1]:  # a segment with its own tag list (``db.pool{k=v}.active``): its name kept
                tags.update(inner[1])
                kept.append(inner[0])
                continue
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
                       start_ns: int | None = None, cumulative: bool = True,
                       skipped: list[tuple[str, str]] | None = None) -> ExportMetricsServiceRequest:
    """One OTLP export of everything usable in a Dropwizard metrics document (see the module doc).

    ``now_ns`` is the time of every point (default: now); ``start_ns`` the start of the
    cumulative series (default ``now_ns``; the poller passes the process's start, ``ProcessStarts``).
    ``cumulative`` False leaves the cumulative points (sums, summaries) out: the first scrape of a
    process whose start is unknown is their start, not a point. Each metric that cannot be read is
    appended to ``skipped`` as ``(name, reason)``.
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

    skipped = skipped if skipped is not None else []

    def skip(name: str, reason: str) -> None:
        skipped.append((name, reason))

    def gauge(name: str | tuple[str, dict], value: Any, unit: str = "", description: str = "",
              shown: str | None = None) -> None:
        v = _gauge_number(value)
        if v is None:
            if shown is not None and value is not None:  # absent derived values are no news
                skip(shown, f"value {_shown(value)} is not a number")
            return
        m, tags = add(name, unit, description)
        _set_value(m.gauge.data_points.add(time_unix_nano=now_ns, attributes=tags), v)

    def count_of(name: str, body: dict, monotonic: bool) -> float | int | None:
        v = _number(body.get("count"))
        if v is None:
            skip(name, "no count" if body.get("count") is None else
                 f"count {_shown(body.get('count'))} is not a finite number")
        elif monotonic and v < 0:
            skip(name, f"count {v} is negative, which a monotonic count never is")
            return None
        return v

    def total(name: str, count: Any, monotonic: bool, unit: str = "", description: str = "") -> None:
        v = count
        if v is None or not cumulative:
            return
        m, tags = add(name, unit, description)
        m.sum.aggregation_temporality = _CUMULATIVE
        m.sum.is_monotonic = monotonic
        _set_value(m.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns, attributes=tags), v)

    def rates(name: str, body: dict, units: str) -> None:
        unit = _rate_unit(units)
        base, tags = split_name(name)
        for key in ("m1_rate", "m5_rate", "m15_rate", "mean_rate"):
            gauge((f"{base}.{key}", tags), body.get(key), unit, shown=f"{name} {key}")

    def summary(name: str, body: dict, unit: str, kind: str) -> bool:
        count = count_of(name, body, monotonic=True)
        if count is None:
            return False
        base, tags = split_name(name)
        for key in ("min", "max", "mean", "stddev"):
            gauge((f"{base}.{key}", tags), body.get(key), unit, shown=f"{name} {key}")
        if not cumulative:
            return True
        mean = _number(body.get("mean")) or 0.0
        m, tags = add(name, unit, f"Dropwizard {kind} (sum = mean x count, an estimate)")
        dp = m.summary.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns, attributes=tags,
                                       count=min(int(count), 2 ** 64 - 1), sum=float(mean) * count)
        for key, q in QUANTILES:
            v = _gauge_number(body.get(key))
            if v is not None:
                dp.quantile_values.add(quantile=q, value=v)
            elif body.get(key) is not None:
                skip(f"{name} {key}", f"value {_shown(body.get(key))} is not a number")
        return True

    def bodies(kind: str):
        section = doc.get(kind)
        if section is None:
            return
        if not isinstance(section, dict):
            skip(kind, "the section is not an object")
            return
        for name, body in section.items():
            if isinstance(body, dict):
                yield name, body
            else:
                skip(name, f"a {kind[:-1]} that is not an object")

    for name, body in bodies("gauges"):
        # a gauge may hold anything (text, a list of deadlocked threads ...): only numbers are stored
        if _gauge_number(body.get("value")) is None:
            skip(name, f"{NOT_A_NUMBER} {_shown(body.get('value'))}")
        else:
            gauge(name, body.get("value"), description="Dropwizard gauge")
    for name, body in bodies("counters"):
        total(name, count_of(name, body, monotonic=False), monotonic=False, description="Dropwizard counter")
    for name, body in bodies("meters"):
        count = count_of(name, body, monotonic=True)
        if count is None:
            continue
        units = str(body.get("units") or "events/second")
        total(name, count, monotonic=True, unit="{" + units.partition("/")[0].rstrip("s") + "}",
              description="Dropwizard meter count")
        rates(name, body, units)
    for name, body in bodies("histograms"):
        summary(name, body, "", "histogram")
    for name, body in bodies("timers"):
        unit = _DURATION_UNITS.get(str(body.get("duration_units") or ""), str(body.get("duration_units") or ""))
        if summary(name, body, unit, "timer"):
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


def monotonic_counts(doc: dict) -> dict[str, int | float]:
    """The counts that only go up while a process lives: meters', timers' and histograms'."""
    counts = {}
    for kind in ("meters", "timers", "histograms"):
        section = doc.get(kind)
        for name, body in (section.items() if isinstance(section, dict) else ()):
            v = _number(body.get("count")) if isinstance(body, dict) else None
            if v is not None and v >= 0:
                counts[f"{kind}/{name}"] = v
    return counts


@dataclass
class Start:
    """The start of a scrape's cumulative series: ``start_ns``; ``known`` False for the first scrape
    of a process without ``jvm.attribute.uptime`` (that scrape is the start, not a point);
    ``restart`` says why a new process was seen (empty when none)."""

    start_ns: int
    known: bool = True
    restart: str = ""


class ProcessStarts:
    """When each scraped process began counting, kept in a JSON file across imports.

    The start of the cumulative series is the process's own start (now - ``jvm.attribute.uptime``)
    when the document has it. Without it the process's first scrape is its start: that scrape's
    cumulative values are held back (a point at its own start is an interval of no length) and
    the following scrapes carry that start. A new process is told by another
    ``jvm.attribute.name`` (``pid@host``), an uptime lower than before, or any meter, timer or
    histogram count lower than the last scrape's (a restarted JVM without ``JvmAttributeGaugeSet``);
    without uptime its start is then the previous scrape (the restart happened after it), so its
    points are kept. The start found for a process is kept, so every poll and every import of it
    carries the same start (one series, no false resets).
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._data: dict | None = None

    def _load(self) -> dict:
        if self._data is not None:
            return self._data
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def start_ns(self, key: str, doc: dict, now_ns: int) -> int:
        return self.observe(key, doc, now_ns).start_ns

    def observe(self, key: str, doc: dict, now_ns: int) -> Start:
        data = self._load()
        uptime = _number(_gauge_value(doc, UPTIME_GAUGE))
        uptime = uptime if uptime is not None and uptime >= 0 else None
        process = _gauge_value(doc, PROCESS_GAUGE)
        process = process if isinstance(process, str) else ""
        counts = monotonic_counts(doc)
        seen = data.get(key)
        seen = seen if isinstance(seen, dict) else {}
        restart = ""
        if seen and isinstance(seen.get("start_ns"), int):
            before = seen.get("counts")
            before = before if isinstance(before, dict) else {}
            fell = sorted(n for n, v in counts.items() if isinstance(before.get(n), (int, float)) and v < before[n])
            if seen.get("process", "") != process:
                restart = f"the process is now {process or 'unnamed'} (was {seen.get('process') or 'unnamed'})"
            elif uptime is not None and isinstance(seen.get("uptime_ms"), (int, float)) and uptime < seen["uptime_ms"]:
                restart = f"the uptime went back from {seen['uptime_ms']:g} ms to {uptime:g} ms"
            elif fell:
                name = fell[0].partition("/")[2]
                restart = (f"the count of {name} went down from {before[fell[0]]} to {counts[fell[0]]}"
                           + (f" (and {len(fell) - 1} more)" if len(fell) > 1 else ""))
        if seen and isinstance(seen.get("start_ns"), int) and not restart:
            start = Start(seen["start_ns"])
        elif uptime is not None:
            start = Start(now_ns - int(uptime * 1_000_000), restart=restart)
        elif restart and isinstance(seen.get("scraped_ns"), int) and seen["scraped_ns"] < now_ns:
            start = Start(seen["scraped_ns"], restart=restart)
        else:
            start = Start(now_ns, known=False, restart=restart)
        data[key] = {"process": process, "start_ns": start.start_ns, "uptime_ms": uptime, "scraped_ns": now_ns,
                     "counts": counts}
        self._data = data
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


#: Largest OTLP record sent: the hub's ``HUB_MAX_RECORD_BYTES``, at most Kafka's default record limit
#: (a broker's ``message.max.bytes`` is 1 MiB unless raised).
MAX_KAFKA_RECORD_BYTES = 1_000_000


def split_request(request: ExportMetricsServiceRequest, max_bytes: int) -> list[ExportMetricsServiceRequest]:
    """``request`` cut into exports of at most ``max_bytes`` serialized bytes each, whole metrics
    per export, every export with the same resource and scope (any registry size then fits the
    topic's record limit). A single metric larger than ``max_bytes`` goes alone."""
    if request.ByteSize() <= max_bytes:
        return [request]
    parts: list[ExportMetricsServiceRequest] = []
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            def shell() -> ExportMetricsServiceRequest:
                part = ExportMetricsServiceRequest()
                out_rm = part.resource_metrics.add()
                out_rm.resource.CopyFrom(rm.resource)
                out_rm.schema_url = rm.schema_url
                out_sm = out_rm.scope_metrics.add()
                out_sm.scope.CopyFrom(sm.scope)
                out_sm.schema_url = sm.schema_url
                return part

            part, size = None, 0
            budget = max_bytes - shell().ByteSize() - 16  # the length prefixes that grow with the content
            for metric in sm.metrics:
                metric_size = metric.ByteSize() + 6  # its field tag and length
                if part is None or (size + metric_size > budget and size):
                    part, size = shell(), 0
                    parts.append(part)
                part.resource_metrics[0].scope_metrics[0].metrics.append(metric)
                size += metric_size
    return parts


def _skipped_text(skipped: list[tuple[str, str]], shown: int = 5) -> str:
    """The metrics left out, for the poll's line: the unreadable ones with their reasons (the first
    ``shown``, then how many more), then the gauges that hold no number, by name."""
    broken = [(n, r) for n, r in skipped if not r.startswith(NOT_A_NUMBER)]
    texts = [n for n, r in skipped if r.startswith(NOT_A_NUMBER)]
    parts = []
    if broken:
        listed = "; ".join(f"{name}: {reason}" for name, reason in broken[:shown])
        more = f"; and {len(broken) - shown} more" if len(broken) > shown else ""
        parts.append(f"{len(broken)} skipped ({listed}{more})")
    if texts:
        more = f" and {len(texts) - shown} more" if len(texts) > shown else ""
        parts.append(f"{len(texts)} gauge(s) not stored, not numbers ({', '.join(texts[:shown])}{more})")
    return "; ".join(parts)


def poll(url: str, *, service: str, bootstrap: str, topic: str, interval: float = 10.0, count: int | None = None,
         experiment_id: str = "", progress: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] = time.sleep, starts_path: Path | None = None,
         max_record_bytes: int = MAX_KAFKA_RECORD_BYTES, timeout: float = 10.0) -> int:
    """Fetch ``url`` every ``interval`` seconds (``count`` times, or until interrupted) and publish
    each document to ``topic`` as ``otlp_proto``. Returns the number of polls published.

    The first fetch must succeed (a wrong URL is a mistake to report at once); later failures are
    reported through ``progress`` and polling goes on. ``starts_path`` keeps each process's start
    across imports (``ProcessStarts``). A poll goes out in as many records as it takes to keep each
    under ``max_record_bytes`` (and Kafka's default limit); ``timeout`` bounds each fetch.
    """
    from hub.producer import send_records

    if interval <= 0:
        raise UserError("--interval must be positive")
    if not timeout > 0:
        raise UserError("--timeout must be positive")
    if count is not None and count <= 0:
        raise UserError("--count must be a positive number")
    starts = ProcessStarts(starts_path)
    limit = min(max_record_bytes, MAX_KAFKA_RECORD_BYTES)
    done = 0
    while count is None or done < count:
        started = time.monotonic()
        try:
            doc = fetch(url, timeout)
        except HubError as exc:
            if done == 0:
                raise
            if progress:
                progress(f"poll failed, trying again in {interval:g}s: {exc}")
        else:
            now_ns = time.time_ns()
            start = starts.observe(f"{service} {url}", doc, now_ns)
            skipped: list[tuple[str, str]] = []
            request = dropwizard_to_otlp(doc, service=service, experiment_id=experiment_id, now_ns=now_ns,
                                         start_ns=start.start_ns, cumulative=start.known, skipped=skipped)
            parts = split_request(request, limit)
            send_records(bootstrap, topic, [(service.encode(), part.SerializeToString()) for part in parts])
            done += 1
            if progress:
                n = len(request.resource_metrics[0].scope_metrics[0].metrics)
                line = f"poll {done}: {n} metrics from {url} sent to {topic}"
                if len(parts) > 1:
                    line += f" in {len(parts)} records"
                if skipped:
                    line += f"; {_skipped_text(skipped)}"
                if start.restart:
                    line += f"; a new process ({start.restart})"
                if not start.known:
                    line += ("; counters, meters, timers and histograms start at this scrape "
                             "(no jvm.attribute.uptime): their points begin with the next poll")
                progress(line)
        if count is not None and done >= count:
            break
        sleep(max(0.0, interval - (time.monotonic() - started)))
    return done
