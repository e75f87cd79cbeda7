"""The store's ClickHouse endpoint keeps Grafana's read-only user within the hub's SQL limits, and
its statements from blocking anyone else.

The server is ``hub store serve`` (the same server the worker runs for Grafana in embedded mode)
with its real engine; the read-only user is the datasource's (``hub_grafana``, no password on
loopback). The limits are the hub's own (HUB_SQL_MAX_SECONDS, HUB_SQL_MAX_MEMORY); what a client
sends may only lower them, and exceeding one fails with the engine's own error code.
"""

from __future__ import annotations

import base64
import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from hub.testing import StoreServerProcess

pytestmark = [pytest.mark.clickhouse]

# Sleeps 0.01 s a row in blocks of 100 rows: 600 s in all, one second a block (the engine checks
# its time limit between blocks).
SLOW = "SELECT sum(sleepEachRow(0.01)) FROM numbers(60000) /* {marker} */"
SLOW_SETTINGS = {"max_block_size": "100"}


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """Limits small enough to be reached: 2 seconds, 64 MiB (so answers of at most 2 MiB)."""
    with StoreServerProcess.start(tmp_path_factory.mktemp("tight"), HUB_SQL_MAX_SECONDS="2",
                                  HUB_SQL_MAX_MEMORY=str(64 << 20)) as running:
        yield running


@pytest.fixture(scope="module")
def roomy(tmp_path_factory):
    """Limits far beyond the slow statement, so that only a cancellation stops it."""
    with StoreServerProcess.start(tmp_path_factory.mktemp("roomy"), HUB_SQL_MAX_SECONDS="3600") as running:
        yield running


def ask(server, sql: str, user: str = "hub_grafana", password: str = "", timeout: float = 120,
        **params: str) -> tuple[int, str, str]:
    """(HTTP status, X-ClickHouse-Exception-Code or '', body) of one POSTed statement."""
    url = f"http://127.0.0.1:{server.port}/?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, data=sql.encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, "", response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-ClickHouse-Exception-Code", ""), exc.read().decode()


def running(server, marker: str) -> int:
    """How many statements carrying ``marker`` the engine is running (asked by the token's holder)."""
    status, _, body = ask(server, "SELECT count() FROM system.processes WHERE query LIKE "
                          f"'%{marker}%' AND query NOT LIKE '%system.processes%'",
                          user="default", password=server.token)
    assert status == 200, body
    return int(body.strip())


def wait_until(condition, attempts: int = 600) -> bool:
    event = threading.Event()
    for _ in range(attempts):
        if condition():
            return True
        event.wait(0.1)
    return False


def test_a_slow_statement_stops_at_the_hubs_time_limit_even_when_the_client_asks_for_more(tight):
    status, code, body = ask(tight, SLOW.format(marker=uuid.uuid4().hex), max_execution_time="100000",
                             **SLOW_SETTINGS)
    assert code == "159", (status, body)  # TIMEOUT_EXCEEDED
    assert "TIMEOUT_EXCEEDED" in body


def test_memory_and_answer_size_stay_within_the_hubs_limits_whatever_the_client_sends(tight):
    status, code, body = ask(tight, "SELECT length(groupArray(number)) FROM numbers(50000000)",
                             max_memory_usage="0")
    assert code == "241", (status, body[:300])  # MEMORY_LIMIT_EXCEEDED
    status, code, body = ask(tight, "SELECT number FROM numbers(10000000)", max_result_bytes="0",
                             result_overflow_mode="break")
    assert code == "396", (status, body[:300])  # TOO_MANY_ROWS_OR_BYTES
    # Lower values than the hub's are the client's to choose; the token's holder is not limited.
    status, code, body = ask(tight, "SELECT number FROM numbers(1000)", max_result_rows="10")
    assert code == "396", (status, body[:300])
    status, _, body = ask(tight, "SELECT count() FROM (SELECT number FROM numbers(10000000))")
    assert (status, body.strip()) == (200, "10000000")
    status, _, body = ask(tight, "SELECT length(groupArray(number)) FROM numbers(50000000)", user="default",
                          password=tight.token)
    assert (status, body.strip()) == (200, "50000000")


def test_a_running_statement_blocks_no_one_and_stops_when_its_client_goes_away(roomy):
    marker = uuid.uuid4().hex
    connection = http.client.HTTPConnection("127.0.0.1", roomy.port, timeout=120)
    query = urllib.parse.urlencode(SLOW_SETTINGS)
    connection.request("POST", f"/?{query}", body=SLOW.format(marker=marker).encode(),
                       headers={"Authorization": "Basic " + base64.b64encode(b"hub_grafana:").decode()})
    assert wait_until(lambda: running(roomy, marker) == 1), "the slow statement never started"
    # While it runs (it has ~10 minutes to go), the token's holder and another reader get answers.
    assert ask(roomy, "SELECT 1", user="default", password=roomy.token)[::2] == (200, "1\n")
    assert ask(roomy, "SELECT 2")[::2] == (200, "2\n")
    assert running(roomy, marker) == 1
    # Its client goes away: the engine stops it.
    connection.sock.close()
    connection.close()
    assert wait_until(lambda: running(roomy, marker) == 0), "the abandoned statement still runs"
    assert ask(roomy, "SELECT 3")[::2] == (200, "3\n")


def test_a_refusal_names_the_read_only_user_with_the_status_a_server_gives_it(tight):
    status, code, body = ask(tight, "CREATE TABLE t (x UInt8) ENGINE = Memory")
    # READONLY (164) is not among the codes ClickHouse's HTTP handler maps to a status: 500.
    assert (status, code) == (500, "164"), body
    assert "hub_grafana: Cannot execute query in readonly mode" in body and "default:" not in body


def test_the_server_stops_without_waiting_for_a_read_only_statement(tmp_path):
    import subprocess

    server = StoreServerProcess.start(tmp_path / "stopping", HUB_SQL_MAX_SECONDS="3600")
    try:
        marker = uuid.uuid4().hex
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        connection.request("POST", f"/?{urllib.parse.urlencode(SLOW_SETTINGS)}",
                           body=SLOW.format(marker=marker).encode(),
                           headers={"Authorization": "Basic " + base64.b64encode(b"hub_grafana:").decode()})
        assert wait_until(lambda: running(server, marker) == 1), "the slow statement never started"
        server.process.terminate()
        try:
            returncode = server.process.wait(120)  # the statement alone has ~10 minutes to go
        except subprocess.TimeoutExpired:
            returncode = None
        assert returncode == 0, "the server waited for the read-only statement instead of cancelling it"
        connection.close()
    finally:
        server.stop()
