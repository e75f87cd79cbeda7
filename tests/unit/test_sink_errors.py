"""Store errors are classified once: refused rows are permanent (never retried as is), an absent
or busy store is retried; the one retry policy never retries a permanent error."""

from __future__ import annotations

import socket
import struct

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from hub.errors import RecoverableError, StoreRejected, StoreUnavailable
from hub.storage.client import classify_insert_error
from hub.storage.sink import retry_recoverable

TOO_MANY_PARTITIONS = ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). "
                       "The limit is controlled by 'max_partitions_per_insert_block' setting.")
TOO_MANY_PARTS = "Code: 252. DB::Exception: Too many parts (300 with average size of 1.00 MiB). Merges are slow."


@pytest.mark.parametrize("exc", [
    AttributeError("'int' object has no attribute 'encode'"),
    TypeError("an integer is required"),
    ValueError("could not convert string to float: 'x'"),
    OverflowError("Python int too large to convert to C long"),
    struct.error("argument out of range"),
    DataError("Unable to create native array for column `Timestamp`: value out of range"),
    DatabaseError(TOO_MANY_PARTITIONS, code=252),
    DatabaseError("Code: 321. DB::Exception: Timestamp: value out of range", code=321),
    DatabaseError("Code: 53. DB::Exception: Type mismatch", code=53),
    DatabaseError("Code: 6. DB::Exception: Cannot parse string 'x' as UInt16", code=6),
], ids=lambda e: type(e).__name__)
def test_errors_about_the_rows_are_permanent_and_keep_the_engines_reason(exc):
    error = classify_insert_error(exc, "hub.alerts")
    assert isinstance(error, StoreRejected) and not isinstance(error, RecoverableError)
    assert str(exc).splitlines()[0][:60] in error.reason
    assert error.table == "hub.alerts"


@pytest.mark.parametrize("exc", [
    OperationalError("Error HTTPConnectionPool: connection refused"),
    ConnectionRefusedError(111, "Connection refused"),
    socket.timeout("timed out"),
    TimeoutError("timed out"),
    DatabaseError(TOO_MANY_PARTS, code=252),
    DatabaseError("Code: 81. DB::Exception: Database hub does not exist. (UNKNOWN_DATABASE)", code=81),
    DatabaseError("HTTP driver received HTTP status 503", code=None),
    RuntimeError("Cannot lock file /home/.../status. Another server instance in same directory is already running."),
    ValueError("I/O operation on closed file"),
], ids=lambda e: type(e).__name__)
def test_an_absent_or_busy_store_is_retried(exc):
    assert isinstance(classify_insert_error(exc, "hub.requests"), StoreUnavailable)


def test_the_retry_policy_retries_an_absent_store_and_never_a_refused_row():
    calls, slept, stalls = [], [], []

    def unavailable_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise StoreUnavailable("connection refused")
        return "stored"

    assert retry_recoverable(unavailable_twice, sleep=slept.append, on_retry=stalls.append) == "stored"
    assert len(calls) == 3 and slept == [0.2, 0.4] and len(stalls) == 2

    refused = []

    def rejected():
        refused.append(1)
        raise StoreRejected("'int' object has no attribute 'encode'")

    with pytest.raises(StoreRejected):
        retry_recoverable(rejected, sleep=slept.append)
    assert len(refused) == 1
