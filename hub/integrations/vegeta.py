"""Vegeta load-test results (``vegeta encode`` JSON lines) as load-generator request-leg records tagged to an experiment.

One line of ``vegeta encode`` (the default ``--to json``) is one request: ``attack``, ``seq``,
``code`` (0 when no response came), ``timestamp`` (RFC 3339, nanoseconds), ``latency`` (ns),
``bytes_out``, ``bytes_in``, ``error``, ``body`` (base64) and, since vegeta 12.8, ``method``,
``url`` and ``headers``. Each becomes a ``primary`` leg from the gateway ``vegeta`` (source
``/vegeta``) to the URL's host.

Patient data: the query string is dropped, and path segments that look like identifiers (all
digits, UUIDs, long hex) become ``{id}`` unless a route template given with ``--route`` matches
first. The response body is never stored: only a short SHA-256 of it (``response_hash``), so
that two runs can be compared.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

import orjson

from hub.errors import UserError
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event

__all__ = ["vegeta_to_legs", "route_matcher", "default_route", "VegetaLineError"]

SOURCE = "/vegeta"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gamedayhub.dev/integrations/vegeta")
_MAX_BYTES = 4294967295
_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")


class VegetaLineError(UserError):
    """A line that is not a ``vegeta encode`` JSON result; the message names the line."""


def default_route(path: str) -> str:
    """The path with identifier-like segments replaced by ``{id}`` (no query, no fragment)."""
    if not path or not path.startswith("/"):
        path = "/" + (path or "")
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    route = "/".join(parts)
    return re.sub(r"\s", "", route) or "/"


def route_matcher(templates: Sequence[str]) -> Callable[[str], str]:
    """``route_of`` for templates such as ``/patients/{id}``: the first matching template, else
    ``default_route(path)``."""
    compiled = []
    for t in templates:
        if not t.startswith("/") or "?" in t or "#" in t or re.search(r"\s", t):
            raise UserError(f"--route {t!r}: a route template starts with '/' and has no spaces, query or fragment")
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{[^}/]*\})", t))
        compiled.append((re.compile(f"^{pattern}/?$"), t))

    def route_of(path: str) -> str:
        for regex, template in compiled:
            if regex.match(path):
                return template
        return default_route(path)
    return route_of


def _timestamp(text: str) -> datetime:
    # RFC 3339 with up to nanoseconds; Python keeps microseconds.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(f"timestamp {text!r} is not RFC 3339")
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone).astimezone(timezone.utc)


def _binary(line: bytes) -> bool:
    """Whether a line is binary data (vegeta's gob-encoded results: NUL bytes, not UTF-8), not text."""
    if b"\x00" in line:
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def vegeta_to_legs(lines: Iterable[bytes | str], *, experiment_id: str, gateway: str = "vegeta",
                   backend: str | None = None, route_of: Callable[[str], str] = default_route,
                   default_method: str = "GET", name: str = "results.bin") -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` request-leg records, one per result line (blank lines skipped).

    ``backend`` defaults to the host of each result's URL; ``route_of`` maps the URL path
    (query string already removed) to the stored route. Lines from vegeta before 12.8 carry no
    ``method``/``url``: the method is ``default_method``, the route ``/`` and the backend
    ``backend`` or ``unknown``.
    Raises ``VegetaLineError`` for a line that is not a vegeta result; for binary data (the results
    file ``vegeta attack`` writes, named ``name`` in the message) it says to run ``vegeta encode``.
    """
    for number, line in enumerate(lines, 1):
        if isinstance(line, str):
            line = line.encode()
        line = line.strip()
        if not line:
            continue
        try:
            r = orjson.loads(line)
            if not isinstance(r, dict) or "code" not in r or "latency" not in r or "timestamp" not in r:
                raise ValueError("expected an object with code, latency and timestamp")
            at = _timestamp(str(r["timestamp"]))
            code = int(r["code"])
            latency_ns = int(r["latency"])
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            if _binary(line):
                raise VegetaLineError(
                    f"line {number}: binary data, not JSON: this is vegeta's own results format (what `vegeta "
                    f"attack` writes); run `vegeta encode` first: vegeta encode {name} > results.json, then import "
                    f"results.json (or pipe: vegeta attack ... | vegeta encode | hub import vegeta - ...)") from None
            raise VegetaLineError(f"line {number}: not a `vegeta encode` JSON result ({exc})") from None
        url = r.get("url") or ""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        target = backend or host or "unknown"  # vegeta before 12.8 writes no url
        method = str(r.get("method") or default_method).upper()
        if not _METHOD.match(method):
            raise VegetaLineError(f"line {number}: method {method!r} is not an HTTP method")
        route = route_of(parts.path or "/")
        body = r.get("body") or ""
        response_hash = ""
        if body:
            try:
                response_hash = hashlib.sha256(base64.b64decode(body)).hexdigest()[:16]
            except (ValueError, TypeError):
                response_hash = ""
        attack = str(r.get("attack") or "")
        seq = r.get("seq", number)
        correlation_id = str(uuid.uuid5(_NAMESPACE, f"{attack}|{seq}|{r['timestamp']}|{url}"))
        code = code if 0 <= code <= 599 else 0
        leg = RequestLeg(
            correlation_id=correlation_id, leg="primary", gateway=gateway, route=route, method=method,
            backend=target, status=code, latency_ms=round(max(latency_ns, 0) / 1e6, 6), event_time=at,
            request_bytes=min(max(int(r.get("bytes_out") or 0), 0), _MAX_BYTES),
            response_bytes=min(max(int(r.get("bytes_in") or 0), 0), _MAX_BYTES),
            response_hash=response_hash, error=str(r.get("error") or "")[:1000], experiment_id=experiment_id,
        )
        event = new_event(leg, source=SOURCE, id=correlation_id, time=at, experimentid=experiment_id or None)
        yield correlation_id.encode(), encode_event(event)
