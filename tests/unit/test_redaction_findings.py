"""Infrastructure names, ids and addresses are kept; patient data in the shapes people use is not."""

from __future__ import annotations

import pytest

from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import default_policy, redact_rows

P = default_policy()
E = P.engine()


@pytest.mark.parametrize("value", [
    # a listed given name joined with an infrastructure word names a component
    "grace-scheduler", "mark-sweep-gw", "rose-db", "jack-gateway", "april-batch", "victoria-gw", "Dr-Strange-gw",
    # ordinary ids with long digit runs: hex, epoch milliseconds, a sequence after a date or a component word
    "corr-0a1b2c3d4e5f", "corr-123456789abc", "1733590000123", "order-20241207-0001234", "db-shard-12345678",
    # a version is not an IP address
    "payments-v2.3.1.0",
])
def test_infrastructure_ids_are_kept(value):
    assert E.struct("id", value, []) == value


@pytest.mark.parametrize("shape, value", [
    ("id", "jane.doe"), ("id", "jane-brambleworth"), ("id", "MRN-00441782"), ("id", "004417829"),
    ("id", "E00441782"), ("id", "6175550142"),
    # ISO dates of birth inside structural values
    ("id", "db-1995-02-15"), ("id", "zebulon-quillfeather-1962-03-14"), ("field", "$.dob.1986-01-03"),
    ("endpoint", "10.0.0.5"), ("endpoint", "jane.doe:8080"),
])
def test_patient_data_in_structural_values_is_not(shape, value):
    assert E.struct(shape, value, []) != value


@pytest.mark.parametrize("value", ["127.82.156.156:32923", "10.0.0.5:443", "[fd00::1]:443", "orders-db:5432"])
def test_a_backend_server_address_with_a_port_is_kept(value):
    row = tuple(value if c == "backend" else "" for c in REQUEST_COLUMNS)
    assert redact_rows(P, "requests", REQUEST_COLUMNS, [row])[0][REQUEST_COLUMNS.index("backend")] == value


@pytest.mark.parametrize("text, expected", [
    ("client 10.78.64.23.", "client [REDACTED:ip]."),
    ("deployed payments-v2.3.1.0 to prod", "deployed payments-v2.3.1.0 to prod"),
])
def test_ip_addresses_in_text(text, expected):
    assert E.text(text, []) == expected
