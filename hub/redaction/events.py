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
key replaced whole, ``actor`` checked against the ``actor`` shape.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from hub.redaction.policy import RedactionPolicy, RedactionStats, default_policy

__all__ = ["redact_event", "KEPT_FIELDS"]

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
    out = None
    for key, value in doc.items():
        if key in KEPT_FIELDS or value in (None, "", [], {}) or isinstance(value, (bool, int, float)):
            continue
        if key == "definition" and isinstance(value, dict):
            # The experiment id stays as created; the halt targets are endpoints the judge calls
            # (masked wherever they are shown, hub.masking), so they stay as written too.
            kept = {k: value[k] for k in ("id", "halt") if k in value}
            rest = {k: v for k, v in value.items() if k not in kept}
            walked = engine._walk(rest, hits, 1)
            new = value if walked is rest else {**kept, **walked}
        else:
            new = engine._walk({key: value}, hits, 0)[key]
        if new is not value:
            if out is None:
                out = dict(doc)
            out[key] = new
    if stats is not None and hits:
        stats.add("experiments", hits)
    if out is None:
        return event
    return msgspec.convert(out, type(event))
