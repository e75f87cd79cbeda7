"""``/metrics`` of the worker and the gateway, in the Prometheus text format written by prometheus_client.

A scrape reads the current values into ``Families`` (a prometheus_client collector) and
``exposition`` renders them: every family with its ``# HELP`` and ``# TYPE`` line, label values
escaped (a quote, a backslash or a newline in a sink's dead-letter reason stays one label value).

Kinds: ``counter`` for a count named ``..._total``; ``gauge`` for a value read now (lag, queue
length, seconds stalled); ``untyped`` for a count whose published name has no ``_total`` suffix
(``hub_dlq_records``, ``hub_sink_step_seconds``, ...), which prometheus_client would otherwise
rename.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = ["Families", "exposition", "CONTENT_TYPE"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the names are all classic ones: any Prometheus reads it
_KINDS = {"counter", "gauge", "untyped"}


class Families(Collector):
    """The samples of one scrape, grouped by family name."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, name: str, value: float, *, kind: str, help: str, **labels: str) -> None:
        """One sample of family ``name`` (a ``counter``'s name ends with ``_total``)."""
        family = self._families.get(name)
        if family is None:
            if kind not in _KINDS or (kind == "counter" and not name.endswith("_total")):
                raise ValueError(f"{name}: a {kind} family is not one of these: counter named *_total, gauge, untyped")
            family = Metric(name[:-len("_total")] if kind == "counter" else name, help,
                            "unknown" if kind == "untyped" else kind)
            self._families[name] = family
        family.add_sample(name, {k: str(v) for k, v in labels.items()}, float(value))

    def collect(self) -> Iterator[Metric]:
        return iter(list(self._families.values()))


def exposition(families: Families) -> bytes:
    """The families as Prometheus text (version 0.0.4)."""
    return generate_latest(families)
