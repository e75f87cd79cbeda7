"""One stored chunk holding several experiments' rows yields one rollup per experiment, all carrying
the chunk's token: the judge counts each experiment's rollup (a token is a duplicate only for the
experiment it was seen for), whichever experiment's rollup it reads first."""

from __future__ import annotations

from types import SimpleNamespace

from hub.abort.judge import Judge
from hub.abort.rollup import Cell, encode_rollups
from hub.abort.run import RunJudges, RunSpan

T = 1_800_000_000


def rule(name="errors", measurement="error_rate", window="10s", comparison=">", threshold=0.2, min_samples=50):
    return SimpleNamespace(name=name, measurement=measurement, window=window, comparison=comparison,
                           threshold=threshold, for_="0s", min_samples=min_samples, severity="abort",
                           scope=None, control=None, confidence=0.99, where=None, of=None)


def cell(second, count, errors, gateway="gw"):
    c = Cell(second, "requests", "primary", "/checkout", gateway, "checkout-v1", "", count, errors)
    c.sketch.add(20.0, count)
    return c


def chunk(token: str, cells: dict[str, list[Cell]]) -> dict[str, bytes]:
    """The rollups a sink publishes for one stored chunk: experiment id -> rollup."""
    return {key.decode(): value for key, value in encode_rollups(token, cells)}


def test_each_experiments_rollup_of_one_chunk_counts_and_a_chunk_stored_again_counts_once():
    emitted = []
    judge = Judge({"a": [rule()], "b": [rule()]}.get, emitted.append)
    first = chunk("requests:requests:0:0-99", {"a": [cell(T, 100, 90)], "b": [cell(T, 100, 80)]})
    again = chunk("requests:requests:0:0-99", {"a": [cell(T, 100, 90)], "b": [cell(T, 100, 80)]})
    judge.add_rollup(first["a"])
    judge.add_rollup(first["b"])
    judge.add_rollup(again["b"])  # the chunk stored again after a crash
    judge.add_rollup(again["a"])
    assert sorted(a["alert_id"] for a in emitted) == [f"a/errors/{T}", f"b/errors/{T}"]
    assert judge.duplicates == 2


def test_rollups_of_two_experiments_not_known_yet_from_one_chunk_are_both_kept():
    emitted = []
    known: dict = {}
    judge = Judge(known.get, emitted.append)
    rollups = chunk("requests:requests:0:0-99", {"a": [cell(T, 100, 90)], "b": [cell(T, 100, 80)]})
    judge.add_rollup(rollups["a"])
    judge.add_rollup(rollups["b"])
    assert len(judge.pending) == 2
    known.update(a=[rule()], b=[rule()])
    judge.tick(T + 1)
    assert sorted(a["alert_id"] for a in emitted) == [f"a/errors/{T}", f"b/errors/{T}"]
    assert judge.pending == {}


def test_a_running_experiment_sharing_chunks_with_a_ready_one_aborts_on_its_errors_then_silence_is_outside():
    """A ready experiment (never started) and a running one get traffic in the same chunks, and the
    ready one's rollups are read first. The running one's error rule fires inside the run and aborts
    it; its silence rule (absence, 15 s) breaches only after the end (grace 1 s) and is recorded
    outside the run. (Were the running one's rollups taken for duplicates of the ready one's, its
    silence rule would fire inside the run instead, 15 s after the start, and abort it.)"""
    start = T
    spans = {"ready": RunSpan("ready", "ready", None, None),
             "running": RunSpan("running", "running", start, None)}
    emitted = []

    def emit(alert: dict) -> None:  # the actions: an abort alert inside the run ends it (abort_grace 1 s)
        emitted.append(alert)
        if alert["status"] == "firing" and not alert["outside_run"]:
            end = clock["now"] + 1
            spans[alert["experiment_id"]] = RunSpan(alert["experiment_id"], "aborted", start, end, "aborted")

    clock = {"now": start}
    conditions = [rule("checkout-errors"), rule("silence", "absence", "15s", threshold=15, min_samples=1)]
    judges = RunJudges({"ready": conditions, "running": conditions}.get, emit, run_of=spans.get,
                       clock_experiments=lambda: [e for e, s in spans.items() if s.status == "running"])
    for clock["now"] in range(start + 1, start + 6):
        judges.tick(clock["now"])
    # requests partitions 0 and 1, each chunk holding both experiments' legs; batches at +2 s and +4 s
    for partition in (0, 1):
        rollups = chunk(f"requests:requests:{partition}:0-149", {
            "ready": [cell(start + 2, 50, 45, gateway="gw-ready")],
            "running": [cell(start + 2, 50, 0), cell(start + 4, 50, 40)]})
        judges.add_rollup(rollups["ready"])
        judges.add_rollup(rollups["running"])
    for clock["now"] in range(start + 6, start + 40):
        judges.tick(clock["now"])
    assert [(a["experiment_id"], a["rule"], a["status"], a["outside_run"]) for a in emitted] == [
        ("ready", "checkout-errors", "firing", True), ("running", "checkout-errors", "firing", False),
        ("running", "silence", "firing", True)]
    assert emitted[-1]["observed"] > 15 and "after the experiment's end (aborted" in emitted[-1]["message"]


def test_a_tick_asks_once_per_experiment_whether_pending_rollups_can_be_judged():
    """Rollups of an experiment id no registry knows (legs tagged with a mistyped id) wait within the
    horizon; each tick asks about that experiment once, not once per waiting rollup (asking about
    an unknown experiment reads the experiment log's end offsets)."""
    asked = []

    def conditions_of(experiment_id):
        asked.append(experiment_id)
        return None

    judge = Judge(conditions_of, lambda alert: None)
    for i in range(50):
        judge.add_rollup(chunk(f"requests:requests:0:{i}-{i}", {"typo": [cell(T + i, 10, 0)]})["typo"])
    asked.clear()
    judge.tick(T + 50)
    assert asked == ["typo"] and len(judge.pending) == 50
