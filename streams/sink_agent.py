"""The sink agent: buffers raw records of a topic and hands each batch to the exactly-once sink.

It never stops on a record: the sink turns every bad record into a dead letter, and an error the
sink did not expect is logged, shown as a stall in the sink's health, and the same batch written
again after a pause (never acknowledged unwritten, never dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import faust

from hub.records.decode import RawMessage
from hub.storage.sink import ExactlyOnceSink, write_with_retry
from hub.storage.client import first_line
from hub.settings import Settings

log = logging.getLogger(__name__)


def to_raw(event) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset,
                      message.key, message.value, int(message.timestamp * 1000))


def write_never_failing(sink: ExactlyOnceSink, messages: list[RawMessage],
                        should_stop=lambda: False, sleep=time.sleep) -> int:
    """``write_with_retry`` until the batch is written: an unexpected error is retried too (with the
    same back-off), so that the agent neither acknowledges the batch unwritten nor dies on it."""
    delay = 1.0
    while True:
        try:
            return write_with_retry(sink, messages, should_stop, sleep)
        except Exception as exc:  # noqa: BLE001 - the loop must survive; the stall shows in /health
            if should_stop():
                raise
            sink.health.failed(exc)
            sink.health.stalled("write", exc, {m.partition for m in messages})
            log.error("sink %s: writing a batch raised %s; writing it again in %.0fs",
                      sink.spec.name, first_line(exc), delay, exc_info=True)
            sleep(delay)
            delay = min(delay * 2, 30.0)


def register_sink_agent(app: faust.App, settings: Settings, sink: ExactlyOnceSink,
                        executor: ThreadPoolExecutor) -> faust.types.AgentT:
    topic = app.topic(sink.spec.topic, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw",
                      partitions=settings.partitions)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _revoked(sender, revoked, **kwargs) -> None:  # noqa: ANN001
        sink.forget(tp.partition for tp in revoked if tp.topic == sink.spec.topic)
        # the rows of the last batch land before another worker takes the partitions over
        await asyncio.get_running_loop().run_in_executor(executor, sink.flush)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _shutdown(sender, **kwargs) -> None:  # noqa: ANN001
        await asyncio.get_running_loop().run_in_executor(executor, sink.close)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _assigned(sender, assigned, **kwargs) -> None:  # noqa: ANN001
        partitions = [tp.partition for tp in assigned if tp.topic == sink.spec.topic]
        sink.forget(partitions)
        # the last ledger chunks of each partition are stored now, not only at its next record: in
        # the sink's thread, before its next write, but not awaited here. The consumer sends no
        # heartbeat until this callback returns, and a recovery longer than the session timeout (a
        # busy store, a loaded machine) had the worker expelled from the group after every rebalance.
        if partitions:
            executor.submit(sink.recover_assigned, partitions)

    async def sink_requests(stream) -> None:
        loop = asyncio.get_running_loop()
        # take_events acks the batch only after this body returns: offsets are committed once
        # the batch is in the ledger (its rows are inserted while the next batch is gathered).
        try:
            async for events in stream.take_events(settings.sink_batch_max, within=settings.sink_batch_seconds):
                messages = [to_raw(e) for e in events]
                await loop.run_in_executor(executor, write_never_failing, sink, messages)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            sink.health.crash(exc)
            raise

    return app.agent(topic, name=f"sink-{sink.spec.table}", concurrency=1)(sink_requests)
