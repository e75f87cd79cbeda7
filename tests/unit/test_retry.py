"""The one retry policy (hub.retry) and its callers: waits, stop conditions, which errors are retried."""

from __future__ import annotations

import http.server
import itertools
import threading

import pytest

from hub import replay, retry as retry_module
from hub.abort import actions
from hub.emit import _emitter
from hub.errors import RecoverableError, StoreRejected
from hub.retry import NO_WAIT, Backoff, retry
from hub.storage import sink


def test_backoff_waits_double_up_to_the_cap():
    assert list(itertools.islice(Backoff(0.2, cap=5.0).waits(), 8)) == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert list(itertools.islice(Backoff(0.5).waits(), 4)) == [0.5, 1.0, 2.0, 4.0]
    assert list(itertools.islice(Backoff(1.0, factor=3.0, cap=2.0).waits(), 3)) == [1.0, 2.0, 2.0]
    assert list(itertools.islice(NO_WAIT.waits(), 3)) == [0.0, 0.0, 0.0]


class Flaky:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retries_the_named_errors_with_the_waits_then_returns():
    slept, told = [], []
    fn = Flaky([OSError("a"), OSError("b"), OSError("c")])
    assert retry(fn, retry_on=(OSError,), backoff=Backoff(0.2, cap=0.5), sleep=slept.append,
                 on_retry=lambda exc, wait: told.append((str(exc), wait))) == "done"
    assert fn.calls == 4 and slept == [0.2, 0.4, 0.5]
    assert told == [("a", 0.2), ("b", 0.4), ("c", 0.5)]


def test_other_errors_are_raised_at_once():
    slept = []
    fn = Flaky([ValueError("not retried"), OSError()])
    with pytest.raises(ValueError):
        retry(fn, retry_on=(OSError,), backoff=Backoff(1.0), sleep=slept.append)
    assert fn.calls == 1 and slept == []


def test_attempts_stop_with_the_last_error_and_no_wait_after_it():
    slept = []
    fn = Flaky([OSError("1"), OSError("2"), OSError("3"), OSError("4")])
    with pytest.raises(OSError, match="3"):
        retry(fn, retry_on=(OSError,), backoff=Backoff(0.5), attempts=3, sleep=slept.append)
    assert fn.calls == 3 and slept == [0.5, 1.0]


def test_should_stop_ends_the_retries_before_the_wait():
    slept, told = [], []
    stops = iter([False, True])
    fn = Flaky([OSError("1"), OSError("2"), OSError("3")])
    with pytest.raises(OSError, match="2"):
        retry(fn, retry_on=(OSError,), backoff=Backoff(0.2), should_stop=lambda: next(stops),
              on_retry=lambda exc, wait: told.append(wait), sleep=slept.append)
    assert fn.calls == 2 and slept == [0.2] and told == [0.2]


def test_no_wait_sleeps_never(monkeypatch):
    monkeypatch.setattr(retry_module.time, "sleep", lambda s: pytest.fail("slept"))
    assert retry(Flaky([OSError()] * 2), retry_on=(OSError,), backoff=NO_WAIT, attempts=3) == "done"


def test_the_sink_retries_recoverable_errors_without_end_and_reports_each():
    slept, stalls = [], []
    fn = Flaky([RecoverableError("away")] * 9)
    assert sink.retry_recoverable(fn, sleep=slept.append, on_retry=stalls.append) == "done"
    assert slept == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]) and len(stalls) == 9
    with pytest.raises(StoreRejected):
        sink.retry_recoverable(Flaky([StoreRejected("bad data")]), sleep=slept.append)
    with pytest.raises(RecoverableError):
        sink.retry_recoverable(Flaky([RecoverableError("away")]), should_stop=lambda: True, sleep=slept.append)


def test_the_emitter_reconnects_after_its_waits():
    assert list(itertools.islice(_emitter.RECONNECT_BACKOFF.waits(), 7)) == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


class _Answers(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.statuses.pop(0) if self.statuses else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_a_webhook_is_tried_three_times_half_a_second_then_a_second_apart(webhook, monkeypatch):
    slept = []
    monkeypatch.setattr(actions.time, "sleep", slept.append)
    _Answers.statuses = [503, 502]
    ok = actions.post_json(webhook, {"a": 1})
    assert (ok["ok"], ok["status_code"], ok["attempts"]) == (True, 200, 3) and slept == [0.5, 1.0]
    slept.clear()
    _Answers.statuses = [500, 500, 500, 500]
    failed = actions.post_json(webhook, {"a": 1})
    assert (failed["ok"], failed["status_code"], failed["attempts"], failed["error"]) == (False, 500, 3, "HTTP 500")
    assert slept == [0.5, 1.0] and _Answers.statuses == [500]


def test_replay_drops_its_database_on_two_fresh_connections_then_its_own(monkeypatch):
    calls = []

    class Store:
        def __init__(self, name, fails):
            self.name, self.fails = name, fails

        def command(self, sql):
            calls.append((self.name, sql))
            if self.fails:
                raise RuntimeError(f"{self.name} busy\nmore")

        def close(self):
            calls.append((self.name, "close"))

    fresh = iter([Store("fresh1", True), Store("fresh2", True)])
    monkeypatch.setattr(replay, "open_store", lambda work, create_database: next(fresh))
    assert replay._drop_fresh(None, Store("own", True), "db_x") == "own busy"
    assert calls == [("fresh1", "DROP DATABASE IF EXISTS db_x SYNC"), ("fresh1", "close"),
                     ("fresh2", "DROP DATABASE IF EXISTS db_x SYNC"), ("fresh2", "close"),
                     ("own", "DROP DATABASE IF EXISTS db_x SYNC")]
    calls.clear()
    fresh = iter([Store("fresh1", False)])
    assert replay._drop_fresh(None, Store("own", True), "db_x") == ""
    assert calls == [("fresh1", "DROP DATABASE IF EXISTS db_x SYNC"), ("fresh1", "close")]
