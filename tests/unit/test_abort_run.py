"""Abort rules act only inside the run: from the start to the end plus abort_grace, on event time;
absence counts from the start; resolved alerts and numbers read as people write them."""

from __future__ import annotations

from types import SimpleNamespace

from hub.abort.actions import chat_message
from hub.abort.rollup import Cell
from hub.abort.run import RunJudge, RunJudges, RunSpan
from hub.abort.wording import plain
from hub.masking import mask_secrets, mask_url

T = 1_800_000_000


def rule(name="errors", measurement="error_rate", window="10s", comparison=">", threshold=0.2, hold="0s",
         min_samples=1, severity="abort"):
    return SimpleNamespace(name=name, measurement=measurement, window=window, comparison=comparison,
                           threshold=threshold, for_=hold, min_samples=min_samples, severity=severity,
                           scope=None, control=None, confidence=0.99, where=None, of=None)


def cell(second, count, errors, route="/a"):
    c = Cell(second, "requests", "primary", route, "gw", "backend", "", count, errors)
    c.sketch.add(10.0, count)
    return c


def span(start=None, end=None, status="running"):
    return RunSpan("e", status, start, end, status if status in ("aborted", "completed") else "")


def test_an_experiment_not_started_gets_alerts_marked_outside_the_run():
    judge = RunJudge("e", [rule()], run=lambda: span(status="ready"))
    judge.add([cell(T, 100, 90)])
    [alert] = judge.evaluate(T)
    assert alert["status"] == "firing" and alert["outside_run"] is True
    assert "outside the run: the experiment is ready, not started" in alert["message"]


def test_a_breach_before_the_start_is_not_carried_into_the_run_and_windows_start_at_the_start():
    current = {"span": span(status="ready")}
    judge = RunJudge("e", [rule(min_samples=50)], run=lambda: current["span"])
    judge.add([cell(T + s, 100, 90) for s in range(3)])
    assert [a["outside_run"] for a in judge.evaluate(T + 2)] == [True]
    current["span"] = span(start=T + 3)
    judge.add([cell(T + 3, 10, 0)])
    assert judge.evaluate(T + 3) == []  # the pre-start errors are not in the run's window
    judge.add([cell(T + 4, 100, 80)])
    [alert] = judge.evaluate(T + 4)
    assert alert["outside_run"] is False and alert["alert_id"] == f"e/errors/{T + 4}"


def test_absence_after_an_abort_is_recorded_outside_the_run():
    judge = RunJudge("e", [rule("silence", "absence", threshold=60)], run=lambda: span(T, T + 30, "aborted"))
    judge.add([cell(T + 20, 10, 0)])
    [alert] = judge.evaluate(T + 110, absence_only=True)
    assert alert["outside_run"] is True and "after the experiment's end (aborted" in alert["message"]


def test_absence_fires_from_the_start_when_no_record_ever_arrives():
    emitted = []
    judges = RunJudges({"e": [rule("silence", "absence", threshold=5)]}.get, emitted.append,
                       run_of=lambda _id: span(start=T), clock_experiments=lambda: ["e"])
    assert judges.tick(T + 4) == []
    [alert] = judges.tick(T + 6)
    assert alert["rule"] == "silence" and alert["observed"] == 6 and alert["outside_run"] is False
    assert emitted == [alert]


def test_a_resolved_alert_says_the_value_went_back_below_the_threshold():
    judge = RunJudge("e", [rule(threshold=0.05)], run=lambda: span(start=T))
    judge.add([cell(T, 100, 10)])
    [firing] = judge.evaluate(T)
    assert "error_rate 0.1 > 0.05 over 10s" in firing["message"]
    judge.add([cell(T + s, 100, 4) for s in range(11, 21)])
    [resolved] = judge.evaluate(T + 20)
    assert resolved["status"] == "resolved"
    assert "error_rate 0.04 <= 0.05 (resolved)" in resolved["message"], resolved["message"]
    text = chat_message({**resolved, "observed": 0.04817})["text"]
    assert "error_rate 0.04817 <= 0.05 (resolved)" in text and "(> 0.05)" not in text


def test_contributors_and_values_print_as_plain_numbers():
    assert [plain(v) for v in (1140.0, 1140, 0.048174, 13.43, 2 / 3, 0.0)] == [
        "1140", "1140", "0.04817", "13.43", "0.6667", "0"]
    alert = {"status": "firing", "severity": "abort", "experiment_id": "e", "rule": "burst", "measurement": "count",
             "observed": 1140.0, "comparison": ">=", "threshold": 20.0, "window_start": "a", "window_end": "b",
             "samples": 5000, "top_contributors": [{"route": "/orders", "value": 1140.0}], "example_request_ids": []}
    text = chat_message(alert)["text"]
    assert "count 1140 >= 20" in text and "/orders (1140)" in text and "e+03" not in text


def test_secrets_are_masked_by_one_function():
    slack = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/Xy9aBcDeFgHiJkLmNoPqRsTu"
    assert mask_url(slack) == "https://hooks.slack.com/services/***/***/***"
    assert mask_url("http://default:s3cret@127.0.0.1:18123/") == "http://***@127.0.0.1:18123/"
    assert mask_url("http://127.0.0.1:8080/halt") == "http://127.0.0.1:8080/halt"
    text = mask_secrets(f"posted to {slack} and http://am:9093/api/v2/alerts?token=abc; Authorization: Bearer abcdefgh123")
    assert "T0123ABCD" not in text and "abc;" not in text and "abcdefgh123" not in text
    assert "http://am:9093/api/v2/alerts?token=***" in text


def test_log_records_are_masked_whatever_handler_writes_them():
    import io
    import logging

    from hub.masking import install_log_masking

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    previous = logging.getLogRecordFactory()
    try:
        install_log_masking()
        logger.info("chat post to %s failed", "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/Xy9aBcDeFg")
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
    assert stream.getvalue().strip() == "chat post to https://hooks.slack.com/services/***/***/*** failed"
