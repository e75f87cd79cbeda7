"""One registry of names: topics, record types, OpenTelemetry attributes and the hub's own metrics.

Emitters, agents, storage and dashboards import these names instead of spelling them, so that
a rename happens in one place.
"""

from __future__ import annotations

from typing import Final, Literal

# ---- record types (CloudEvents ``type`` attribute) -----------------------------------
RECORD_REQUEST_LEG: Final = "dev.gamedayhub.request.leg.v1"  # one leg of a gateway request
RECORD_TYPES: Final = (RECORD_REQUEST_LEG,)

# ---- OpenTelemetry attribute keys shared with emitters --------------------------------
ATTR_EXPERIMENT_ID: Final = "experiment.id"      # the experiment a record belongs to
ATTR_EXPERIMENT_PHASE: Final = "experiment.phase"  # baseline, injection, observation, recovery
ATTR_GATEWAY_LEG: Final = "gateway.leg"          # primary, shadow or canary
ATTR_CORRELATION_ID: Final = "gateway.correlation_id"  # shared by all legs of one request

# ---- legs of a gateway request -----------------------------------------------------------
LEGS: Final = ("primary", "shadow", "canary")

# ---- the hub's own metrics ----------------------------------------------------------------
MetricName = Literal[
    "sink.records.stored",     # rows written to ClickHouse by the sink
    "sink.records.skipped",    # records seen again after a restart and skipped (already stored)
    "sink.batches",            # inserts made by the sink
    "sink.insert.seconds",     # time spent in ClickHouse inserts
    "dlq.records",             # records sent to the dead-letter topic, labelled by reason
]
