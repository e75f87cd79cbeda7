"""The findings repository: every note and surprise of every experiment, searchable and exportable.

A finding is one note on an experiment's log (``hub.experiment_notes``), an observation or a
surprise (with what was expected and what happened), joined with its experiment (title, status,
environment) and the plan's targeted services. ``search_findings`` filters them by

- text: case-insensitive substring of the note's text, expected or actual, or the experiment's title;
- tag: one of the note's tags (case-insensitive);
- service: a tag naming the service, or a service in the experiment's ``targets.services``;
- since / until: the note's time, ISO 8601 (a date, or a date and time; UTC when no offset).

It runs one read-only SELECT through a query callable ``query(sql) -> {"columns", "rows"}``,
so it works through the hub's HTTP API (``hub.cli.data.run_query``) or on a store.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from hub.errors import UserError
from hub.questions import lit

Query = Callable[[str], dict]
EXPORT_FORMATS = ("csv", "json", "md")
COLUMNS = ("time", "experiment_id", "experiment_title", "experiment_status", "environment", "phase", "kind",
           "text", "expected", "actual", "tags", "services", "actor", "note_id")


@dataclass
class Finding:
    time: str           # ISO 8601, UTC, milliseconds
    experiment_id: str
    experiment_title: str
    experiment_status: str
    environment: str
    phase: str
    kind: str           # observation | surprise
    text: str
    expected: str
    actual: str
    tags: list[str]
    services: list[str]  # the experiment's targeted services
    actor: str
    note_id: str

    def as_dict(self) -> dict:
        return asdict(self)


def parse_time(text: str | None, name: str) -> float | None:
    """Epoch seconds of an ISO 8601 date or date-time (UTC when it carries no offset)."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise UserError(f"--{name} expects an ISO 8601 date or time such as 2026-11-30 or "
                        f"2026-11-30T14:00:00Z, not {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def findings_sql(database: str = "hub", *, text: str | None = None, tag: str | None = None,
                 service: str | None = None, since: str | None = None, until: str | None = None,
                 experiment: str | None = None, kind: str | None = None, limit: int = 10_000) -> str:
    db = database
    where = ["1"]
    if text:
        where.append(f"positionCaseInsensitiveUTF8(concat(n.text, ' ', n.expected, ' ', n.actual, ' ', "
                     f"ifNull(x.title, '')), {lit(text)}) > 0")
    if tag:
        where.append(f"arrayExists(t -> lower(t) = lower({lit(tag)}), n.tags)")
    if service:
        where.append(f"(arrayExists(t -> lower(t) = lower({lit(service)}), n.tags) "
                     f"OR arrayExists(s -> lower(s) = lower({lit(service)}), d.services))")
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and end < start:
        raise UserError("--until is before --since")
    if start is not None:
        where.append(f"toUnixTimestamp64Milli(n.time) >= {int(start * 1000)}")
    if end is not None:
        where.append(f"toUnixTimestamp64Milli(n.time) <= {int(end * 1000)}")
    if experiment:
        where.append(f"n.experiment_id = {lit(experiment)}")
    if kind:
        if kind not in ("observation", "surprise"):
            raise UserError(f"--kind is observation or surprise, not {kind!r}")
        where.append(f"n.note_kind = {lit(kind)}")
    return f"""
SELECT
    toUnixTimestamp64Milli(n.time) AS time_ms, n.experiment_id AS experiment_id, ifNull(x.title, '') AS title,
    ifNull(x.status, '') AS status, ifNull(x.environment, '') AS environment,
    n.note_kind AS kind, n.text AS text, n.expected AS expected, n.actual AS actual, n.tags AS tags,
    d.services AS services, n.actor AS actor, n.note_id AS note_id
FROM {db}.experiment_notes AS n
LEFT JOIN {db}.experiments AS x ON x.experiment_id = n.experiment_id
LEFT JOIN
(
    SELECT experiment_id,
           JSONExtract(payload, 'definition', 'targets', 'services', 'Array(String)') AS services
    FROM {db}.experiment_events
    WHERE accepted = 1 AND kind = 'experiment_created'
) AS d ON d.experiment_id = n.experiment_id
WHERE {' AND '.join(where)}
ORDER BY n.time, n.experiment_id, n.note_id
LIMIT {int(limit)}
""".strip()


def _list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if value else []
    return [str(v) for v in value]


def search_findings(query: Query, database: str = "hub", **filters) -> list[Finding]:
    """The findings that match every filter given (see ``findings_sql``), oldest first."""
    result = query(findings_sql(database, **filters))
    rows = [dict(zip(result["columns"], row)) for row in result.get("rows", [])]
    phases = _phases(query, database, sorted({r["experiment_id"] for r in rows}))
    out = []
    for r in rows:
        when = dt.datetime.fromtimestamp(int(r["time_ms"]) / 1000, dt.timezone.utc)
        r["phase"] = _phase_at(phases.get(r["experiment_id"], []), int(r["time_ms"]))
        out.append(Finding(time=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                           experiment_id=r["experiment_id"], experiment_title=r["title"],
                           experiment_status=r["status"], environment=r["environment"], phase=r["phase"],
                           kind=r["kind"], text=r["text"], expected=r["expected"], actual=r["actual"],
                           tags=_list(r["tags"]), services=_list(r["services"]), actor=r["actor"],
                           note_id=r["note_id"]))
    return out


def _phases(query: Query, database: str, experiments: list[str]) -> dict[str, list[tuple[str, int, int | None]]]:
    """Each experiment's phases as (phase, start ms, end ms or None while it lasts)."""
    out: dict[str, list] = {}
    for i in range(0, len(experiments), 500):
        chunk = experiments[i:i + 500]
        result = query(
            f"SELECT experiment_id, toString(phase) AS phase, toUnixTimestamp64Milli(start) AS start_ms, "
            f"if(end IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(end))) AS end_ms "
            f"FROM {database}.experiment_phases WHERE experiment_id IN ({', '.join(lit(e) for e in chunk)}) "
            f"ORDER BY experiment_id, start_ms")
        for eid, phase, start, end in result.get("rows", []):
            out.setdefault(eid, []).append((phase, int(start), None if end is None else int(end)))
    return out


def _phase_at(phases: list[tuple[str, int, int | None]], ms: int) -> str:
    """The phase current at ``ms`` ('' before the first phase, or after the experiment ended)."""
    for phase, start, end in phases:
        if start <= ms and (end is None or ms < end):
            return phase
    return ""


# ---- export -----------------------------------------------------------------------------------
def to_csv(findings: Iterable[Finding]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in findings:
        d = f.as_dict()
        writer.writerow([";".join(d[c]) if isinstance(d[c], list) else d[c] for c in COLUMNS])
    return buffer.getvalue()


def to_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(findings: list[Finding], title: str = "Findings") -> str:
    lines = [f"# {title}", "", f"{len(findings)} finding(s): {sum(f.kind == 'surprise' for f in findings)} "
             f"surprise(s), {sum(f.kind != 'surprise' for f in findings)} observation(s).", ""]
    lines += ["| time (UTC) | experiment | phase | kind | finding | expected | actual | tags | by |",
              "|---|---|---|---|---|---|---|---|---|"]
    for f in findings:
        lines.append("| " + " | ".join(_md(c) for c in (
            f.time.replace("T", " ")[:19], f.experiment_id, f.phase or "-", f.kind, f.text, f.expected or "-",
            f.actual or "-", ", ".join(f.tags) or "-", f.actor)) + " |")
    return "\n".join(lines) + "\n"


def to_table(findings: list[Finding]) -> str:
    rows = [[f.time.replace("T", " ")[:19], f.experiment_id, f.phase or "-", f.kind,
             f.text if len(f.text) <= 70 else f.text[:67] + "...", ",".join(f.tags) or "-", f.actor]
            for f in findings]
    headers = ["time (UTC)", "experiment", "phase", "kind", "finding", "tags", "by"]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    out.append(f"({len(rows)} finding{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def export(findings: list[Finding], fmt: str) -> str:
    if fmt == "csv":
        return to_csv(findings)
    if fmt == "json":
        return to_json(findings)
    if fmt == "md":
        return to_markdown(findings)
    raise UserError(f"export format is one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
