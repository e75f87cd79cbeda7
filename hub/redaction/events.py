"""Experiment events redacted before they are appended to the experiment log.

The experiment topic is the source of truth of every experiment: the worker's registry folds it,
``hub status`` and the timeline read it, and the store keeps a copy of each event. Notes, surprises,
expected/actual, fault targets and parameters, abort reasons, summaries and the actor are typed by
people during a gameday, so patient data lands in them. ``redact_event`` masks them before the
event is written, so the topic, the registry, the CLI and API output and the store all carry the
same redacted text (the experiments sink finds nothing left to mask).

What is left as it is: the fields that identify and order the event (``kind``, ``experiment_id``,
``event_id``, ``time``, ``sequence``, ``fault_id``, ``note_id``, ``note_kind``, ``forced``, a phase
change's ``phase``, the definition's ``id``): they are checked by the lifecycle, and an experiment id the hub validated is
stored as it was created. Everything else is walked as the ``experiment_events.payload`` column
is (``hub.redaction.columns``): every string masked as free text, every value under a PHI-named
key replaced whole, ``actor`` checked against the ``actor`` shape; the names of the team in the
definition (``hub.redaction.columns.STAFF_FIELDS``: participants, prerequisite owners, the
approver) against the ``staff`` shape: people of the team, not patients, kept as written when they
are a name or a handle. The
experiments sink redacts the stored copy with the same function (``redact_event_doc``), the halt
targets' URLs masked there.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from hub.masking import mask_url
from hub.redaction.columns import STAFF_FIELDS
from hub.redaction.policy import RedactionPolicy, RedactionStats, default_policy

__all__ = ["redact_event", "redact_event_doc", "KEPT_FIELDS"]

#: Fields of an event that identify or order it: never redacted.
KEPT_FIELDS: Final = frozenset({"kind", "experiment_id", "event_id", "time", "sequence", "fault_id", "note_id",
                                "note_kind", "forced", "phase"})


def redact_event(event, policy: RedactionPolicy | None = None, stats: RedactionStats | None = None):
    """``event`` (a ``hub.experiments.events`` event) with its free text masked; the same object when
    nothing was found. The result is of the same type and passes the same checks (a masked text is
    never empty)."""
    engine = (policy or default_policy()).engine()
    doc: dict[str, Any] = msgspec.to_builtins(event)
    hits: list[str] = []
    out = redact_event_doc(engine, doc, hits)
    if stats is not None and hits:
        stats.add("experiments", hits)
    if out is doc:
        return event
    return msgspec.convert(out, type(event))


def redact_event_doc(engine, doc: dict[str, Any], hits: list, *, stored: bool = False) -> dict[str, Any]:
    """An experiment event as JSON-like data, redacted as ``redact_event`` does; ``doc`` itself when
    nothing changed. ``stored``: the copy in the store (``experiment_events.payload``), which
    dashboards read, carries the halt targets' URLs masked (``hub.masking.mask_url``: credentials
    and query values ``***``); the experiment log keeps them as written, since the judge calls them."""
    out = None
    for key, value in doc.items():
        if key in KEPT_FIELDS or value in (None, "", [], {}) or isinstance(value, (bool, int, float)):
            continue
        if key == "definition" and isinstance(value, dict):
            new = _definition(engine, value, hits, stored)
        else:
            new = engine._walk({key: value}, hits, 0)[key]
        if new is not value:
            if out is None:
                out = dict(doc)
            out[key] = new
    return doc if out is None else out


def _definition(engine, value: dict[str, Any], hits: list, stored: bool) -> dict[str, Any]:
    """The definition: its id as created, its halt targets as written (masked in the store), the
    names of the team (``STAFF_FIELDS``) checked against the ``staff`` shape, the rest free text."""
    out = {}
    changed = False
    rest = {k: v for k, v in value.items() if k not in ("id", "halt") and k not in STAFF_FIELDS}
    walked = engine._walk(rest, hits, 1)
    for k, v in value.items():
        if k == "id":
            new = v
        elif k == "halt":
            new = v
            if stored and isinstance(v, list):
                targets = [{**h, "url": mask_url(h["url"])} if isinstance(h, dict) and isinstance(h.get("url"), str)
                           else h for h in v]
                new = v if targets == v else targets
        elif k in STAFF_FIELDS:
            if isinstance(v, list):
                items = [_staff(engine, item, STAFF_FIELDS[k], hits) for item in v]
                new = v if all(a is b for a, b in zip(items, v)) else items
            else:
                new = _staff(engine, v, STAFF_FIELDS[k], hits)
        else:
            new = walked.get(k, v) if walked is not rest else v
        changed = changed or new is not v
        out[k] = new
    if walked is not rest:  # a key replaced by the walk (not shaped like a key) is in walked only
        for k, v in walked.items():
            if k not in rest:
                out[k], changed = v, True
        for k in rest:
            if k not in walked:
                out.pop(k, None)
    return out if changed else value


def _staff(engine, item, key: str, hits: list):
    """A participant, prerequisite or environment: its person field (``key``) checked against the
    ``staff`` shape (a name or handle of the team is kept as written), the rest walked as free text."""
    if not isinstance(item, dict):
        return engine._walk(item, hits, 2)
    person = item.get(key)
    others = {k: v for k, v in item.items() if k != key}
    walked = engine._walk(others, hits, 2)
    masked = engine.struct("staff", person, hits) if isinstance(person, str) and person else person
    if walked is others and masked is person:
        return item
    return {k: masked if k == key else walked[k] for k in item} if key in item else walked
