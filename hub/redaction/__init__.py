"""Redaction at ingest: patient data never reaches the store (see docs/redaction.md)."""

from hub.redaction.apply import (
    Redactor,
    redact_attributes,
    redact_dead_letter_value,
    redact_log_rows,
    redact_metric_rows,
    redact_request_rows,
    redact_rows,
    redact_span_rows,
    redact_text,
    redact_url,
)
from hub.redaction.policy import (
    MaskPattern,
    RedactionPolicy,
    RedactionStats,
    default_policy,
    load_policy,
    policy_from_mapping,
)

__all__ = [
    "MaskPattern",
    "RedactionPolicy",
    "RedactionStats",
    "Redactor",
    "default_policy",
    "load_policy",
    "policy_from_mapping",
    "redact_attributes",
    "redact_dead_letter_value",
    "redact_log_rows",
    "redact_metric_rows",
    "redact_request_rows",
    "redact_rows",
    "redact_span_rows",
    "redact_text",
    "redact_url",
]
