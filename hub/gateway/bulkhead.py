"""The shadow path's bulkhead: bounded concurrency and a bounded queue; overflow is dropped, counted,
and reported to a callback. ``submit`` never waits, so the primary path never waits on shadows."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Bulkhead:
    def __init__(self, max_concurrent: int = 8, max_queue: int = 64):
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._queue: asyncio.Queue | None = None
        self._workers: list[asyncio.Task] = []
        self.stats = {"submitted": 0, "started": 0, "completed": 0, "failed": 0, "dropped": 0}

    async def start(self) -> None:
        # Queue of max_queue waiting jobs; max_concurrent workers run them.
        self._queue = asyncio.Queue(maxsize=max(self.max_queue, 0) or 1)
        self._unbounded_zero = self.max_queue == 0
        self._idle = self.max_concurrent
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.max_concurrent)]

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (dropped) when the queue is full. Never waits."""
        self.stats["submitted"] += 1
        q = self._queue
        if q is None or (self._unbounded_zero and (self._idle == 0 or q.qsize() > 0)):
            self.stats["dropped"] += 1
            return False
        try:
            q.put_nowait(job)
        except asyncio.QueueFull:
            self.stats["dropped"] += 1
            return False
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def _work(self) -> None:
        q = self._queue
        while True:
            job = await q.get()
            self._idle -= 1
            self.stats["started"] += 1
            try:
                await job()
                self.stats["completed"] += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a shadow's failure is its own, never the gateway's
                self.stats["failed"] += 1
                log.debug("shadow job failed", exc_info=True)
            finally:
                self._idle += 1
                q.task_done()

    async def join(self, timeout: float = 10.0) -> None:
        """Wait until every queued job ran (tests, shutdown)."""
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
