"""A sink's health as ``/health``, ``/ready`` and ``hub status`` see it: stalled while it retries
(since when, the error, the partitions), ok once a write goes through, crashed when its agent
stopped, lagging past the configured lag; ``hub status`` sums every sink, not only requests."""

from __future__ import annotations

from hub.cli.stack import sink_lines
from hub.errors import StoreUnavailable
from hub.storage.sink import SinkHealth, lag_problems, retry_recoverable


def test_a_sink_is_stalled_while_it_retries_and_ok_once_the_store_takes_the_write():
    health = SinkHealth("requests")
    seen = []
    attempts = iter([StoreUnavailable("connection refused"), StoreUnavailable("connection refused"), None])

    def write():
        error = next(attempts)
        if error is not None:
            raise error
        return 10

    def sleep(_):
        seen.append((health.state, [(p["partition"], p["error"]) for p in health.problems()]))

    assert retry_recoverable(write, sleep=sleep,
                             on_retry=lambda exc: health.stalled("write", exc, [1, 0])) == 10
    assert seen[0] == ("stalled", [(0, "connection refused"), (1, "connection refused")])
    assert health.stalled_seconds() >= 0 and health.problems()[0]["retries"] == 2
    health.recovered("write")
    assert health.state == "ok" and health.problems() == [] and health.stalled_seconds() == 0.0


def test_a_crashed_agent_and_a_lagging_partition_are_problems():
    health = SinkHealth("spans")
    health.crash(RuntimeError("boom\nsecond line"))
    [problem] = health.problems()
    assert (problem["sink"], problem["state"], problem["partition"], problem["error"]) == \
        ("spans", "crashed", None, "boom")
    [lagging] = lag_problems("requests", {0: 10, 1: 500_001}, 200_000, {1: 0.0})
    assert lagging == {"sink": "requests", "state": "lagging", "partition": 1,
                       "error": "500001 records not stored yet (more than 200000)",
                       "since": "1970-01-01T00:00:00.000+00:00"}


def test_hub_status_sums_every_sink_and_prints_each_problem():
    sinks = {"requests": {"stored": 100, "invalid": 2, "batches": 3, "skipped": 1},
             "spans": {"stored": 40, "invalid": 1, "batches": 2, "skipped": 0},
             "metrics": {"stored": 7, "invalid": 0, "batches": 1, "skipped": 0}}
    health = {"status": "degraded",
              "problems": [{"sink": "spans", "state": "stalled", "partition": 2, "error": "insert failed: refused",
                            "since": "2026-01-01T00:00:00.000+00:00"}],
              "sinks": {"spans": {"state": "stalled", "lag": 12}}}
    lines = sink_lines(sinks, health)
    assert lines[0] == "sinks:  stored=147 dead-lettered=3 batches=6 skipped-after-restart=1 health=degraded"
    assert any(line.split()[:2] == ["spans:", "stored=40"] and "stalled lag=12" in line for line in lines)
    assert lines[-2:] == ["health: degraded (1 problem)",
                          "  spans[2] stalled since 2026-01-01T00:00:00.000+00:00: insert failed: refused"]
    assert sink_lines(sinks, {"status": "ok", "problems": [], "sinks": {}})[-1] == "health: ok"


class FlakySink:
    """A sink whose write raises what it is given, once each, before it takes the batch."""

    def __init__(self, errors):
        from types import SimpleNamespace

        self.errors = list(errors)
        self.health = SinkHealth("requests")
        self.spec = SimpleNamespace(name="requests")
        self.states: list[str] = []

    def write(self, messages):
        self.states.append(self.health.state)
        if self.errors:
            raise self.errors.pop(0)
        return len(messages)


def test_the_agent_writes_a_batch_again_after_an_unexpected_error_instead_of_dying():
    from hub.records.decode import RawMessage
    from streams.sink_agent import write_never_failing

    sink = FlakySink([RecursionError("maximum recursion depth exceeded"), StoreUnavailable("refused")])
    messages = [RawMessage("t", 3, 7, None, b"{}", 0)]
    assert write_never_failing(sink, messages, sleep=lambda _: None) == 1
    assert sink.states == ["ok", "stalled", "stalled"]
    assert sink.health.state == "ok" and sink.health.errors == 1
    assert sink.health.last_error == "maximum recursion depth exceeded"


def test_lag_counts_rows_stored_but_not_yet_committed_as_stored():
    """The sink stored offsets 0-199 of partition 0 and its store went away before the commit
    that follows: those rows are not waiting; only the 200 sent since are."""
    from types import SimpleNamespace

    from kafka import TopicPartition

    from streams.worker import sink_lags

    sink = SimpleNamespace(spec=SimpleNamespace(name="requests", topic="legs"), landed={0: 199})
    other = SimpleNamespace(spec=SimpleNamespace(name="spans", topic="spans"), landed={})
    legs0, legs1, spans0 = TopicPartition("legs", 0), TopicPartition("legs", 1), TopicPartition("spans", 0)
    highwater = {legs0: 400, legs1: 50, spans0: 7}
    lags = sink_lags([sink, other], [legs0, legs1, spans0, TopicPartition("unknown", 0)], highwater.get,
                     {legs1: 20})
    assert lags == {"requests": {0: 200, 1: 30}, "spans": {0: 7}}
    # a commit ahead of what this sink saw stored (another worker stored it) counts as well
    assert sink_lags([sink], [legs0], highwater.get, {legs0: 390}) == {"requests": {0: 10}}
