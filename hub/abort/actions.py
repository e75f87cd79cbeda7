"""What happens when an alert fires: the record on ``hub.alerts``, the abort event, halt webhooks, Alertmanager, chat.

Every action runs off the judge's path (a queue and a thread) and its outcome is recorded on
``hub.alerts`` as an ``action`` record, so "did the injectors get the halt call?" is a query.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request

from hub.errors import UserError
from hub.settings import Settings

log = logging.getLogger(__name__)


def alertmanager_payload(alert: dict) -> list[dict]:
    """The body of ``POST /api/v2/alerts`` for one alert (resolved alerts carry endsAt)."""
    item = {
        "labels": {"alertname": alert["rule"], "experiment_id": alert["experiment_id"],
                   "severity": alert["severity"], "measurement": alert["measurement"], "source": "gameday-hub"},
        "annotations": {"summary": alert["message"],
                        "observed": "" if alert["observed"] is None else f"{alert['observed']:.6g}",
                        "threshold": f"{alert['comparison']} {alert['threshold']:g}",
                        "window": f"{alert['window_start']} .. {alert['window_end']}",
                        "examples": ", ".join(alert["example_request_ids"])},
        "startsAt": alert["breach_since"] or alert["window_end"],
    }
    if alert["status"] == "resolved":
        item["endsAt"] = alert["window_end"]
    return [item]


def chat_message(alert: dict) -> dict:
    """A chat-friendly message (Slack/Mattermost/Teams incoming webhooks take ``text``)."""
    icon = ":rotating_light:" if alert["status"] == "firing" and alert["severity"] == "abort" else (
        ":warning:" if alert["status"] == "firing" else ":white_check_mark:")
    observed = "no value" if alert["observed"] is None else f"{alert['observed']:.4g}"
    lines = [f"{icon} *{alert['severity'].upper()} {alert['status']}*: experiment `{alert['experiment_id']}`, "
             f"rule `{alert['rule']}`",
             f"{alert['measurement']} = {observed} ({alert['comparison']} {alert['threshold']:g}) "
             f"over {alert['window_start']} .. {alert['window_end']}, {alert['samples']} samples"]
    if alert["top_contributors"]:
        lines.append("top: " + ", ".join(f"{c['route']} ({c['value']})" for c in alert["top_contributors"]))
    if alert["example_request_ids"]:
        lines.append("examples: " + ", ".join(alert["example_request_ids"][:3]))
    return {"text": "\n".join(lines)}


def post_json(url: str, payload, attempts: int = 3, timeout: float = 5.0) -> dict:
    """POST with retries; returns the outcome (never raises)."""
    body = json.dumps(payload).encode()
    error = ""
    status = None
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
                return {"url": url, "ok": True, "status_code": status, "attempts": attempt, "error": ""}
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = str(getattr(exc, "reason", exc))
        time.sleep(0.5 * 2 ** (attempt - 1))
    return {"url": url, "ok": False, "status_code": status, "attempts": attempts, "error": error}


class AlertActions:
    """Publishes alerts and runs their actions in the background."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._queue: queue.Queue = queue.Queue()
        self._producer = None
        self._producer_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alert-actions", daemon=True)
        self._thread.start()
        self.outcomes: list[dict] = []

    def _kafka(self):
        with self._producer_lock:
            if self._producer is None:
                from kafka import KafkaProducer

                self._producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all", retries=5,
                                               linger_ms=0)
            return self._producer

    def _warm_up(self) -> None:
        """Connect and learn the alerts topic's leaders now, so the first alert pays no set-up."""
        try:
            self._kafka().partitions_for(self.settings.topic_alerts)
        except Exception:  # the first alert will try again and report
            log.warning("could not connect the alert producer yet", exc_info=True)

    def record(self, record: dict) -> None:
        producer = self._kafka()
        producer.send(self.settings.topic_alerts, key=record["experiment_id"].encode(),
                      value=json.dumps(record).encode())
        producer.flush(timeout=30)

    def __call__(self, alert: dict) -> None:
        """Called by the judge for each new alert: record it now, act in the background."""
        self.record(alert)
        self._queue.put(alert)

    def _run(self) -> None:
        self._warm_up()
        while True:
            alert = self._queue.get()
            try:
                self._act(alert)
            except Exception:
                log.exception("alert action failed")

    def _outcome(self, alert: dict, action: str, outcome: dict) -> None:
        record = {"kind": "action", "action": action, "alert_id": alert["alert_id"], "status": alert["status"],
                  "experiment_id": alert["experiment_id"], "rule": alert["rule"],
                  "time": dt.datetime.now(dt.timezone.utc).isoformat(), **outcome}
        self.outcomes.append(record)
        try:
            self.record(record)
        except Exception:
            log.exception("could not record the outcome of %s", action)

    def _act(self, alert: dict) -> None:
        firing_abort = alert["status"] == "firing" and alert["severity"] == "abort"
        if firing_abort:
            self._outcome(alert, "abort", self._abort(alert))
            for url in [u.strip() for u in self.settings.halt_webhooks.split(",") if u.strip()]:
                payload = {"action": "halt", "experiment_id": alert["experiment_id"], "reason": alert["message"],
                           "alert": alert}
                self._outcome(alert, "webhook", post_json(url, payload))
        if self.settings.alertmanager_url:
            url = self.settings.alertmanager_url.rstrip("/") + "/api/v2/alerts"
            self._outcome(alert, "alertmanager", post_json(url, alertmanager_payload(alert)))
        if self.settings.chat_webhook:
            self._outcome(alert, "chat", post_json(self.settings.chat_webhook, chat_message(alert)))

    def _abort(self, alert: dict) -> dict:
        from hub.experiments import lifecycle
        from hub.experiments.service import ExperimentService, now

        service = ExperimentService(self.settings)
        try:
            service.command(alert["experiment_id"], lambda s: lifecycle.abort(
                s, alert["message"], f"rule:{alert['rule']}", now(), actor="gameday-hub judge"))
            return {"ok": True, "error": ""}
        except UserError as exc:  # already aborted or completed: nothing to halt
            return {"ok": False, "error": str(exc)}
        finally:
            service.close()
