"""The judge agent: hands rollups from ``hub.rollups`` to the abort judge, and ticks its clock."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import faust

from hub.abort.runtime import JudgeRuntime
from hub.settings import Settings


def register_judge_agent(app: faust.App, settings: Settings, runtime: JudgeRuntime) -> None:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge")  # the judge is single-threaded
    topic = app.topic(settings.topic_rollups, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw", partitions=settings.partitions)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _revoked(sender, revoked, **kwargs) -> None:  # noqa: ANN001
        mine = [tp.partition for tp in revoked if tp.topic == settings.topic_rollups]
        runtime.forget(mine)
        runtime.revoked(mine)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _assigned(sender, assigned, **kwargs) -> None:  # noqa: ANN001
        mine = [tp.partition for tp in assigned if tp.topic == settings.topic_rollups]
        runtime.forget(mine)
        runtime.assigned(mine)

    async def judge_rollups(stream) -> None:
        loop = asyncio.get_running_loop()
        # ``runtime.process`` never raises (a bad record is skipped and counted); should the agent
        # stop all the same, the judge's health says so and /ready fails.
        try:
            async for events in stream.take_events(1000, within=0.05):
                items = [(e.message.partition, e.message.offset, e.message.value) for e in events]
                await loop.run_in_executor(executor, runtime.process, items)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            runtime.health.crash(exc)
            raise

    app.agent(topic, name="judge-rollups", concurrency=1)(judge_rollups)

    @app.timer(1.0)
    async def judge_clock() -> None:
        await asyncio.get_running_loop().run_in_executor(executor, runtime.tick)
