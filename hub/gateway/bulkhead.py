"""The shadow path's bulkhead: bounded concurrency, a bounded queue and a bound on the bytes the
queued and running jobs hold; overflow is dropped and counted. ``submit`` never waits, so the
primary path never waits on shadows. ``close`` gives the jobs a grace period, then reports every
job that did not finish to its ``on_drop`` callback: no job disappears without a trace."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
OnDrop = Callable[[str], None]


class Bulkhead:
    def __init__(self, max_concurrent: int = 8, max_queue: int = 64, max_bytes: int | None = None):
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.bytes = 0  # held by queued and running jobs
        self._queue: asyncio.Queue | None = None
        self._workers: list[asyncio.Task] = []
        self.stats = {"submitted": 0, "started": 0, "completed": 0, "failed": 0, "dropped": 0,
                      "dropped_bytes": 0, "dropped_at_stop": 0}

    async def start(self) -> None:
        # Queue of max_queue waiting jobs; max_concurrent workers run them.
        q: asyncio.Queue = asyncio.Queue(maxsize=max(self.max_queue, 0) or 1)
        self._queue = q
        self._unbounded_zero = self.max_queue == 0
        self._idle = self.max_concurrent
        self._workers = [asyncio.create_task(self._work(q)) for _ in range(self.max_concurrent)]

    def submit(self, job: Job, nbytes: int = 0, on_drop: OnDrop | None = None) -> bool:
        """Queue ``job`` holding ``nbytes``; False (dropped) when the queue or the byte budget is full.
        Never waits."""
        self.stats["submitted"] += 1
        q = self._queue
        if q is None or (self._unbounded_zero and (self._idle == 0 or q.qsize() > 0)):
            self.stats["dropped"] += 1
            return False
        if self.max_bytes is not None and nbytes and self.bytes + nbytes > self.max_bytes:
            self.stats["dropped"] += 1
            self.stats["dropped_bytes"] += 1
            return False
        try:
            q.put_nowait((job, nbytes, on_drop))
        except asyncio.QueueFull:
            self.stats["dropped"] += 1
            return False
        self.bytes += nbytes
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def _work(self, q: asyncio.Queue) -> None:
        while True:
            job, nbytes, on_drop = await q.get()
            self._idle -= 1
            self.stats["started"] += 1
            try:
                await job()
                self.stats["completed"] += 1
            except asyncio.CancelledError:
                self._dropped_at_stop(on_drop)
                raise
            except Exception:  # a shadow's failure is its own, never the gateway's
                self.stats["failed"] += 1
                log.debug("shadow job failed", exc_info=True)
            finally:
                self.bytes -= nbytes
                self._idle += 1
                q.task_done()

    def _dropped_at_stop(self, on_drop: OnDrop | None) -> None:
        self.stats["dropped_at_stop"] += 1
        if on_drop is not None:
            try:
                on_drop("the gateway stopped")
            except Exception:
                log.warning("reporting a shadow dropped at stop failed", exc_info=True)

    async def join(self, timeout: float = 10.0) -> None:
        """Wait until every queued job ran (tests, shutdown)."""
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except asyncio.TimeoutError:
                pass

    async def close(self, grace: float = 0.0) -> None:
        """Let the jobs run for up to ``grace`` seconds, then stop: every job not finished by then
        (queued or running) is reported to its ``on_drop``."""
        if grace > 0:
            await self.join(grace)
        if self._queue is not None:
            while not self._queue.empty():
                _, nbytes, on_drop = self._queue.get_nowait()
                self.bytes -= nbytes
                self._queue.task_done()
                self._dropped_at_stop(on_drop)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []


class Bulkheads:
    """One ``Bulkhead`` per key (a shadow backend, or a route), each with the same bounds, so a
    shadow that hangs fills only its own; created on first use. ``stats``, ``queued`` and ``bytes``
    add up over all of them."""

    def __init__(self, max_concurrent: int = 8, max_queue: int = 64, max_bytes: int | None = None):
        self._bounds = (max_concurrent, max_queue, max_bytes)
        self.heads: dict[str, Bulkhead] = {}
        self._started = False

    async def start(self) -> None:
        self._started = True

    def _head(self, key: str) -> Bulkhead:
        head = self.heads.get(key)
        if head is None:
            head = self.heads[key] = Bulkhead(*self._bounds)
            _start_now(head)  # start() only makes a queue and the worker tasks: nothing to wait for
        return head

    def submit(self, key: str, job: Job, nbytes: int = 0, on_drop: OnDrop | None = None) -> bool:
        if not self._started:
            return False
        return self._head(key).submit(job, nbytes, on_drop)

    @property
    def stats(self) -> dict:
        out: dict[str, int] = {}
        for head in self.heads.values():
            for k, v in head.stats.items():
                out[k] = out.get(k, 0) + v
        return out or {k: 0 for k in Bulkhead().stats}

    @property
    def queued(self) -> int:
        return sum(h.queued for h in self.heads.values())

    @property
    def bytes(self) -> int:
        return sum(h.bytes for h in self.heads.values())

    async def join(self, timeout: float = 10.0) -> None:
        await asyncio.gather(*(h.join(timeout) for h in list(self.heads.values())))

    async def close(self, grace: float = 0.0) -> None:
        if grace > 0:
            await self.join(grace)
        await asyncio.gather(*(h.close() for h in list(self.heads.values())))
        self._started = False


def _start_now(head: Bulkhead) -> None:
    """``Bulkhead.start`` without awaiting (it never waits): the queue and the workers."""
    coro = head.start()
    try:
        coro.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover - start() never suspends
        raise RuntimeError("Bulkhead.start suspended")
