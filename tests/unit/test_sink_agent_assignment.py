"""The sink agent's answer to a partition assignment: the consumer sends no heartbeat until the
callback returns, so the recovery of the assigned partitions runs in the sink's thread after it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import faust
from faust.types import TP

from hub.settings import load_settings
from streams.sink_agent import register_sink_agent


class SlowRecovery:
    """A sink whose recovery waits until released (a busy store), recording where it ran."""

    def __init__(self, topic: str):
        self.spec = SimpleNamespace(topic=topic, table="requests", name="requests")
        self.started, self.release = threading.Event(), threading.Event()
        self.forgotten: list[int] = []
        self.recovered: list[int] = []
        self.recovered_in = ""

    def forget(self, partitions) -> None:
        self.forgotten.extend(partitions)

    def recover_assigned(self, partitions) -> None:
        self.started.set()
        self.recovered_in = threading.current_thread().name
        assert self.release.wait(30), "the recovery was never released"
        self.recovered.extend(partitions)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_assignment_callback_returns_before_the_recovery_which_runs_in_the_sinks_thread(tmp_path):
    settings = load_settings({"HUB_HOME": str(tmp_path)})
    app = faust.App("sink-agent-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    sink = SlowRecovery(settings.topic_requests)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-requests")
    register_sink_agent(app, settings, sink, executor)
    assigned = {TP(settings.topic_requests, 0), TP(settings.topic_requests, 2), TP("other", 1)}
    try:
        # returns at once although the recovery is held (before, it waited for the recovery)
        asyncio.run(asyncio.wait_for(app.on_partitions_assigned.send(assigned), 10))
        assert sorted(sink.forgotten) == [0, 2]
        assert sink.started.wait(10) and sink.recovered == []
    finally:
        sink.release.set()
        executor.shutdown(wait=True)
    assert sorted(sink.recovered) == [0, 2]
    assert sink.recovered_in.startswith("sink-requests")
