"""The demo's load generator: an asyncio HTTP client sending a steady rate of GETs through the gateway.

It keeps its own count of what it sent and what came back (per route and status, per second),
which is the ground truth the hub's answers are compared with.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

#: route template -> share of the requests
MIX = {"/patients/{id}": 0.45, "/patients/{id}/allergies": 0.25, "/appointments/{id}": 0.30}


@dataclass
class LoadStats:
    sent: int = 0
    done: int = 0
    per_route: dict[str, Counter] = field(default_factory=dict)  # route -> status (0: no answer) -> count
    timeline: list[tuple[float, str, int]] = field(default_factory=list)  # (unix time, route, status)

    def record(self, route: str, status: int) -> None:
        self.done += 1
        self.per_route.setdefault(route, Counter())[status] += 1
        self.timeline.append((time.time(), route, status))

    def errors(self, since: float = 0.0) -> tuple[int, int]:
        """(failed, answered) since a unix time: failed is no answer or status >= 500."""
        rows = [s for t, _, s in self.timeline if t >= since]
        return sum(1 for s in rows if s == 0 or s >= 500), len(rows)

    def summary(self) -> dict:
        return {route: {str(k): v for k, v in sorted(c.items())} for route, c in sorted(self.per_route.items())}


class LoadGenerator:
    """``rate`` requests a second to ``base_url``, spread over ``MIX`` with ids 1..``ids``."""

    def __init__(self, base_url: str, rate: float, *, ids: int = 500, seed: int = 19, concurrency: int = 64):
        self.base_url = base_url.rstrip("/")
        self.rate = rate
        self.ids = ids
        self.random = random.Random(seed)
        self.stats = LoadStats()
        self._limit = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    def _pick(self) -> tuple[str, str]:
        x, acc = self.random.random(), 0.0
        route = next(iter(MIX))
        for route, share in MIX.items():
            acc += share
            if x < acc:
                break
        return route, route.replace("{id}", str(self.random.randint(1, self.ids)))

    async def _one(self, session: aiohttp.ClientSession, route: str, path: str) -> None:
        async with self._limit:
            try:
                async with session.get(self.base_url + path) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                status = 0
        self.stats.record(route, status)

    async def run(self) -> None:
        """Send until ``stop``; then wait for the requests in flight."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            start = time.monotonic()
            while not self._stop.is_set():
                route, path = self._pick()
                task = asyncio.create_task(self._one(session, route, path))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self.stats.sent += 1
                due = start + self.stats.sent / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=15)

    def stop(self) -> None:
        self._stop.set()
