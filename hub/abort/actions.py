"""What happens when an alert fires: the record on ``hub.alerts``, the abort event, halt webhooks, Alertmanager, chat.

Every action runs off the judge's path (a queue and a thread) and its outcome is recorded on
``hub.alerts`` as an ``action`` record, so "did the injectors get the halt call?" is a query.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from hub.abort.wording import contributor, plain, value_against_threshold
from hub.errors import UserError
from hub.masking import mask_secrets, mask_url
from hub.retry import Backoff, retry
from hub.settings import Settings

log = logging.getLogger(__name__)


def alertmanager_payload(alert: dict) -> list[dict]:
    """The body of ``POST /api/v2/alerts`` for one alert (resolved alerts carry endsAt)."""
    item = {
        "labels": {"alertname": alert["rule"], "experiment_id": alert["experiment_id"],
                   "severity": alert["severity"], "measurement": alert["measurement"], "source": "gameday-hub"},
        "annotations": {"summary": alert["message"],
                        "observed": "" if alert["observed"] is None else plain(alert["observed"]),
                        "threshold": f"{alert['comparison']} {plain(alert['threshold'])}",
                        "window": f"{alert['window_start']} .. {alert['window_end']}",
                        "examples": ", ".join(alert["example_request_ids"])},
        "startsAt": alert["breach_since"] or alert["window_end"],
    }
    if alert["status"] == "resolved":
        item["endsAt"] = alert["window_end"]
    return [item]


def chat_message(alert: dict) -> dict:
    """A chat-friendly message (Slack/Mattermost/Teams incoming webhooks take ``text``); a resolved
    alert says the value went back across the threshold."""
    icon = ":rotating_light:" if alert["status"] == "firing" and alert["severity"] == "abort" else (
        ":warning:" if alert["status"] == "firing" else ":white_check_mark:")
    lines = [f"{icon} *{alert['severity'].upper()} {alert['status']}*: experiment `{alert['experiment_id']}`, "
             f"rule `{alert['rule']}`",
             f"{value_against_threshold(alert['measurement'], alert['observed'], alert['comparison'], alert['threshold'], alert['status'])} "
             f"over {alert['window_start']} .. {alert['window_end']}, {alert['samples']} samples"]
    if alert["top_contributors"]:
        lines.append("top: " + ", ".join(contributor(c) for c in alert["top_contributors"]))
    if alert["example_request_ids"]:
        lines.append("examples: " + ", ".join(alert["example_request_ids"][:3]))
    return {"text": "\n".join(lines)}


def _credentials(url: str) -> tuple[str, dict]:
    """``url`` without its user info, and the request headers: user info (``http://user:pw@host/...``)
    is sent as HTTP basic authentication, as curl and browsers do (urllib would read it as the host);
    the query (``?token=...``) stays on the URL."""
    headers = {"Content-Type": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, headers
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport)), headers


#: A webhook's tries: 0.5 s before the second, 1 s before the third (doubling).
WEBHOOK_BACKOFF = Backoff(0.5)


class _Unanswered(Exception):
    """One POST that failed (its status and error are kept by ``post_json``)."""


def post_json(url: str, payload, attempts: int = 3, timeout: float = 5.0) -> dict:
    """POST with retries; returns the outcome with its URL masked and the time it took (never raises)."""
    body = json.dumps(payload).encode()
    error = ""
    status = None
    started = time.monotonic()

    def outcome(ok: bool, attempt: int) -> dict:
        return {"url": mask_url(url), "ok": ok, "status_code": status, "attempts": attempt,
                "error": mask_secrets(error), "latency_ms": round((time.monotonic() - started) * 1000, 1)}

    target, headers = _credentials(url)
    tried = 0

    def once() -> dict:
        nonlocal status, error, tried
        tried += 1
        request = urllib.request.Request(target, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
                return outcome(True, tried)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(getattr(exc, "reason", exc))
        raise _Unanswered

    if attempts < 1:
        return outcome(False, attempts)
    try:
        return retry(once, retry_on=(_Unanswered,), backoff=WEBHOOK_BACKOFF, attempts=attempts)
    except _Unanswered:
        return outcome(False, attempts)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AlertActions:
    """Publishes alerts and runs their actions in the background.

    ``experiment_of(id)`` gives an experiment's state as the worker holds it (its registry): the
    halt targets come from its definition, so nothing is read from the log before halting. An
    alert raised outside the run is recorded and nothing else. Per experiment, the halt targets
    are called and the abort written once: a later abort alert of an experiment already aborted
    (or halted by this worker) halts nothing again.
    """

    def __init__(self, settings: Settings, experiment_of: Callable[[str], object] | None = None):
        self.settings = settings
        self.experiment_of = experiment_of or (lambda _id: None)
        self._queue: queue.Queue = queue.Queue()
        self._producer = None
        self._producer_lock = threading.Lock()
        self._halted: set[str] = set()  # experiments whose halt targets were called and abort written
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="halt")
        self._thread = threading.Thread(target=self._run, name="alert-actions", daemon=True)
        self._thread.start()
        self.outcomes: collections.deque[dict] = collections.deque(maxlen=100)  # the latest, for hub status

    def _kafka(self):
        with self._producer_lock:
            if self._producer is None:
                from hub.runtime import clients

                self._producer = clients.producer(self.settings.bootstrap, settings=self.settings, acks="all",
                                                  retries=5, linger_ms=0)
            return self._producer

    def _warm_up(self) -> None:
        """Connect and learn the alerts topic's leaders now, so the first alert pays no set-up."""
        try:
            self._kafka().partitions_for(self.settings.topic_alerts)
        except Exception:  # the first alert will try again and report
            log.warning("could not connect the alert producer yet", exc_info=True)

    def record(self, record: dict) -> None:
        record = {k: mask_secrets(v) if k in ("message", "url", "error") else v for k, v in record.items()}
        producer = self._kafka()
        producer.send(self.settings.topic_alerts, key=record["experiment_id"].encode(),
                      value=json.dumps(record).encode())
        producer.flush(timeout=30)

    def __call__(self, alert: dict) -> None:
        """Called by the judge for each new alert: record it now, act in the background (an alert
        outside the run is only recorded)."""
        self.record(alert)
        if alert.get("outside_run"):
            log.info("alert %s %s is outside the run of %s: recorded, nothing done", alert.get("alert_id"),
                     alert.get("status"), alert.get("experiment_id"))
            return
        self._queue.put(alert)

    def _run(self) -> None:
        self._warm_up()
        while True:
            alert = self._queue.get()
            try:
                self._act(alert)
            except Exception:
                log.exception("alert action failed")

    def _outcome(self, alert: dict, action: str, outcome: dict, began: dt.datetime) -> None:
        """Record an action's outcome, stamped with the moment it was begun (``latency_ms``: how long
        it took), so that the timeline shows when the halt was called, not when it answered."""
        record = {"kind": "action", "action": action, "alert_id": alert["alert_id"], "status": alert["status"],
                  "experiment_id": alert["experiment_id"], "rule": alert["rule"], "time": began.isoformat(),
                  **outcome}
        self.outcomes.append(record)
        try:
            self.record(record)
        except Exception:
            log.exception("could not record the outcome of %s", action)

    def halt_targets(self, experiment_id: str) -> list[tuple[str, str]]:
        """(name, url) of every target to halt for this experiment: its definition's ``halt``, and
        the global ``HUB_HALT_WEBHOOKS`` when they are enabled for every experiment."""
        state = self.experiment_of(experiment_id)
        targets = [(t.name or "", t.url) for t in getattr(getattr(state, "definition", None), "halt", None) or ()]
        if self.settings.halt_webhooks_all_experiments:
            targets += [("", u.strip()) for u in self.settings.halt_webhooks.split(",") if u.strip()]
        seen, out = set(), []
        for name, url in targets:
            if url not in seen:
                seen.add(url)
                out.append((name, url))
        return out

    def _act(self, alert: dict) -> None:
        eid = alert["experiment_id"]
        if alert["status"] == "firing" and alert["severity"] == "abort":
            state = self.experiment_of(eid)
            if eid in self._halted or getattr(state, "status", "") == "aborted":
                log.info("experiment %s is already aborted: alert %s halts nothing again", eid, alert["alert_id"])
            else:
                self._halted.add(eid)
                self._halt_and_abort(alert)
        if self.settings.alertmanager_url:
            url = self.settings.alertmanager_url.rstrip("/") + "/api/v2/alerts"
            began = utc_now()
            self._outcome(alert, "alertmanager", post_json(url, alertmanager_payload(alert)), began)
        if self.settings.chat_webhook:
            began = utc_now()
            self._outcome(alert, "chat", post_json(self.settings.chat_webhook, chat_message(alert)), began)

    def _halt_and_abort(self, alert: dict) -> None:
        """Every halt target at once, and the abort event on the timeline alongside; returns when
        all have answered (or given up), before chat and Alertmanager hear of the alert."""
        payload = {"action": "halt", "experiment_id": alert["experiment_id"], "reason": alert["message"],
                   "alert": alert}
        began = utc_now()
        halts = [(name, self._pool.submit(post_json, url, payload)) for name, url in
                 self.halt_targets(alert["experiment_id"])]
        abort = self._pool.submit(self._abort, alert)
        for name, future in halts:
            outcome = future.result()
            if name:
                outcome["message"] = f"halt target {name}"
            self._outcome(alert, "halt", outcome, began)
        self._outcome(alert, "abort", abort.result(), began)

    def _abort(self, alert: dict) -> dict:
        from hub.experiments import lifecycle
        from hub.experiments.service import ExperimentService, now

        started = time.monotonic()

        def took() -> float:
            return round((time.monotonic() - started) * 1000, 1)
        service = ExperimentService(self.settings)
        try:
            service.command(alert["experiment_id"], lambda s: lifecycle.abort(
                s, mask_secrets(alert["message"]), f"rule:{alert['rule']}", now(), actor="gameday-hub judge"))
            return {"ok": True, "error": "", "latency_ms": took()}
        except UserError as exc:  # already aborted or completed: nothing to halt
            return {"ok": False, "error": str(exc), "latency_ms": took()}
        finally:
            service.close()
