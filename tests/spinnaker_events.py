"""Spinnaker Echo events in the shape Echo's REST listener posts them, for the Spinnaker tests.

Where the shape comes from (spinnaker/echo at 989e20b5b72f and spinnaker/orca at 2fdb327a9f67, their
main branches of April 2025):

- ``echo-api/src/main/java/com/netflix/spinnaker/echo/api/events/Event.java`` and ``Metadata.java``:
  an event is ``details`` (``source``, ``type``, ``created`` as a string of epoch milliseconds,
  ``organization``, ``project``, ``application``, ``_content_id``, ``attributes``, ``requestHeaders``),
  ``content``, ``rawContent``, ``payload`` and ``eventId`` (a random UUID).
- ``echo-rest/src/main/java/com/netflix/spinnaker/echo/events/RestEventListener.java``: the event
  as a map; ``flatten: true`` turns ``content`` and ``details`` into JSON strings; ``wrap: true``
  (without a template) sends ``{"eventName": <default spinnaker_events>, <fieldName, default
  payload>: event}``.
- ``orca-echo/src/main/groovy/com/netflix/spinnaker/orca/echo/spring/EchoNotifyingExecutionListener.groovy``:
  ``details.type`` ``orca:<execution type, lower case>:starting`` and ``...:complete|failed`` (by
  ``wasSuccessful``), ``content`` = ``{execution, executionId}``.
- ``orca-echo/src/main/groovy/com/netflix/spinnaker/orca/echo/spring/EchoNotifyingStageListener.groovy``:
  ``orca:stage:starting``, then ``skipped`` for SKIPPED, ``complete`` for SUCCEEDED and
  ``failed`` for every other status (FAILED_CONTINUE too); ``content`` = ``standalone``,
  ``canceled``, ``context``, ``startTime``, ``endTime``, ``executionId``, ``stageId``,
  ``isSynthetic`` (``syntheticStageOwner != null``), ``name``, ``execution``.
- ``orca-core/.../pipeline/model/PipelineExecutionImpl.java`` and ``StageExecutionImpl.java``: the
  serialized execution (``type`` PIPELINE/ORCHESTRATION, ``canceledBy``, ``cancellationReason``,
  ``description``, ``stages`` with ``id``, ``refId``, ``type``, ``name``, ``status``, ``context``,
  ``syntheticStageOwner``, ``parentStageId`` ...); statuses from ``orca-api/.../ExecutionStatus.java``.
- ``orca-kayenta/src/main/kotlin/.../pipeline/KayentaCanaryStage.kt``, ``RunCanaryIntervalsStage.kt``
  and ``tasks/AggregateCanaryResultsTask.kt``, ``tasks/MonitorKayentaCanaryTask.kt``: a
  ``kayentaCanary`` stage with synthetic ``runCanaryIntervals``, ``wait`` ("Warmup Wait",
  "Interval Wait #n") and ``runCanary`` ("Run Canary #n", ``canaryScore``) stages; the parent's
  ``canaryScores`` and ``canaryScoreMessage`` ("Final canary score 62.0 is below the pass score
  threshold.").
"""

from __future__ import annotations

import copy
import json
import uuid

#: An experiment targeting ``{service}`` (format with ``id`` and ``service``).
DEFINITION = """
id: {id}
title: Patients ride out a canary
scenario: Deploy a canary while traffic flows.
hypothesis: The API keeps answering.
expected_outcome: Error rate stays under 5%.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
environment: {{name: staging, kind: non-live, risk: low}}
targets:
  services: [{service}]
"""


def ms(t) -> int:
    return int(t.timestamp() * 1000)


def stage(name: str, type: str, status: str, start=None, end=None, context=None, *, synthetic_owner=None,
          parent=None, ref_id="1") -> dict:
    return {"id": uuid.uuid4().hex[:26].upper(), "refId": ref_id, "type": type, "name": name,
            "startTime": ms(start) if start else None, "endTime": ms(end) if end else None,
            "startTimeExpiry": None, "status": status, "context": context or {}, "outputs": {}, "tasks": [],
            "syntheticStageOwner": synthetic_owner, "parentStageId": parent, "requisiteStageRefIds": [],
            "scheduledTime": None, "lastModified": None, "additionalMetricTags": None}


def execution(application: str, stages: list, status: str = "RUNNING", start=None, end=None, *,
              type: str = "PIPELINE", name: str = "deploy-patients", parameters=None, description=None,
              canceled=False, canceled_by=None, cancellation_reason=None) -> dict:
    return {"type": type, "id": uuid.uuid4().hex[:26].upper(), "application": application, "name": name,
            "buildTime": ms(start) if start else None, "canceled": canceled, "canceledBy": canceled_by,
            "cancellationReason": cancellation_reason, "limitConcurrent": False, "maxConcurrentExecutions": 0,
            "keepWaitingPipelines": False, "stages": stages, "startTime": ms(start) if start else None,
            "endTime": ms(end) if end else None, "startTimeExpiry": None, "status": status,
            "authentication": {"user": "ana@example.org", "allowedAccounts": ["staging"]}, "paused": None,
            "origin": "api", "trigger": {"type": "manual", "user": "ana@example.org", "parameters": parameters or {},
                                         "artifacts": [], "notifications": [], "rebake": False, "dryRun": False,
                                         "strategy": False, "resolvedExpectedArtifacts": []},
            "description": description, "pipelineConfigId": "c6f20df7-f9ab-45b5-b525-9a67ef2e95b5",
            "source": None, "notifications": [], "initialConfig": {}, "systemNotifications": [],
            "spelEvaluator": None, "templateVariables": None, "partition": None}


def _event(type: str, application: str, content: dict, created) -> dict:
    return {"details": {"source": "orca", "type": type, "created": str(ms(created)), "organization": None,
                        "project": None, "application": application, "_content_id": None, "attributes": None,
                        "requestHeaders": {}},
            "content": content, "rawContent": None, "payload": None, "eventId": str(uuid.uuid4())}


def stage_event(execution_: dict, stage_: dict, phase: str, created) -> dict:
    """EchoNotifyingStageListener.recordEvent for ``stage_`` of ``execution_``."""
    content = {"standalone": execution_["type"] == "ORCHESTRATION", "canceled": execution_["canceled"],
               "context": copy.deepcopy(stage_["context"]), "startTime": stage_["startTime"],
               "endTime": stage_["endTime"], "executionId": execution_["id"], "stageId": stage_["id"],
               "isSynthetic": stage_["syntheticStageOwner"] is not None, "name": stage_["name"],
               "execution": copy.deepcopy(execution_)}
    return _event(f"orca:stage:{phase}", execution_["application"], content, created)


def execution_event(execution_: dict, phase: str, created) -> dict:
    """EchoNotifyingExecutionListener.beforeExecution/afterExecution."""
    content = {"execution": copy.deepcopy(execution_), "executionId": execution_["id"]}
    return _event(f"orca:{execution_['type'].lower()}:{phase}", execution_["application"], content, created)


def flattened(event: dict) -> dict:
    """RestEventListener with ``flatten: true``."""
    return dict(event, content=json.dumps(event["content"]), details=json.dumps(event["details"]))


def wrapped(event: dict, field: str = "payload", name: str = "spinnaker_events") -> dict:
    """RestEventListener with ``wrap: true`` (no template)."""
    return {"eventName": name, field: event}
