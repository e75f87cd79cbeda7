"""The one retry policy: which errors are retried, how long to wait between tries, when to stop.

``Backoff(first, factor, cap)`` is the waits: ``first``, then each ``factor`` times the one
before, never more than ``cap``. ``retry(fn, retry_on=..., backoff=..., attempts=...)`` calls
``fn`` until it returns; an error of a ``retry_on`` class is retried after the next wait, any
other error is raised at once. It stops, raising the last error, after ``attempts`` calls (none:
no limit) or when ``should_stop()`` says so after a failed call; ``on_retry(error, wait)`` is told
of each retry before its wait. A loop that retries by itself (a background thread that waits on
an event) takes its waits from ``Backoff.waits()`` and starts them again after a success.

Used by the alert actions' webhooks (``hub.abort.actions.post_json``), the replay's clean-up
(``hub.replay``), the sink's back-pressure on the store (``hub.storage.sink.retry_recoverable``)
and the emitter's reconnects (``hub.emit``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

__all__ = ["Backoff", "NO_WAIT", "retry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first: float
    factor: float = 2.0
    cap: float = float("inf")

    def waits(self) -> Iterator[float]:
        """The waits between tries, without end."""
        wait = min(self.first, self.cap)
        while True:
            yield wait
            wait = min(wait * self.factor, self.cap)


NO_WAIT = Backoff(0.0)


def retry(fn: Callable[[], T], *, retry_on: tuple[type[BaseException], ...], backoff: Backoff,
          attempts: int | None = None, should_stop: Callable[[], bool] = lambda: False,
          on_retry: Callable[[BaseException, float], None] | None = None,
          sleep: Callable[[float], None] | None = None) -> T:
    """``fn()``, tried again on an error of ``retry_on`` after each of ``backoff``'s waits; the last
    error raised after ``attempts`` calls or once ``should_stop()``; other errors raised at once."""
    waits = backoff.waits()
    tried = 0
    while True:
        tried += 1
        try:
            return fn()
        except retry_on as exc:
            if (attempts is not None and tried >= attempts) or should_stop():
                raise
            wait = next(waits)
            if on_retry is not None:
                on_retry(exc, wait)
            if wait > 0:
                (sleep or time.sleep)(wait)
