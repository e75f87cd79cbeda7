"""The store server (``hub store serve``) against clickhouse-connect's HTTP client: the real engine
behind ClickHouse's HTTP interface, shared by several clients."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from hub.settings import load_settings
from hub.sql import run_readonly
from hub.storage.client import open_store
from hub.storage.migrations import discover, migrate
from hub.storage.server import NEED_MORE, parse_insert_head
from hub.testing import StoreServerProcess, free_port

pytestmark = [pytest.mark.clickhouse]

UTC = dt.timezone.utc
COLUMNS = ["id", "ts", "labels", "codes", "route", "latency"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with StoreServerProcess.start(tmp_path_factory.mktemp("store-server")) as running:
        yield running


@pytest.fixture
def db(server) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    client = server.client()
    client.command(f"CREATE DATABASE {name}")
    client.close()
    return name


def make_table(client, db: str, name: str = "t") -> str:
    table = f"{db}.{name}"
    client.command(f"""
        CREATE TABLE {table} (
            id UUID, ts DateTime64(3, 'UTC'), labels Map(String, String), codes Array(UInt16),
            route LowCardinality(String), latency Nullable(Float32)
        ) ENGINE = MergeTree ORDER BY (route, ts)
        SETTINGS non_replicated_deduplication_window = 1000""")
    return table


def sample_rows(count: int, seed: int = 0) -> list[list]:
    base = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    return [[uuid.UUID(int=seed * 1_000_000 + i + 1), base + dt.timedelta(milliseconds=37 * i),
             {"az": f"az-{i % 3}", "i": str(i)}, [i % 7, i % 11, 500], f"/r/{i % 4}",
             None if i % 5 == 0 else i / 4] for i in range(count)]


@pytest.mark.parametrize("text, eof, expected", [
    (b"INSERT INTO t (a, b) FORMAT Native\n\x09\x00", True, (b"INSERT INTO t (a, b)", b"", "Native", b"\x09\x00")),
    (b"INSERT INTO t (a, b) FORMAT Nat", False, NEED_MORE),
    (b"INSERT INTO db.format (`format`) FORMAT CSV\n1\n", True, (b"INSERT INTO db.format (`format`)", b"", "CSV", b"1\n")),
    (b"INSERT INTO t SETTINGS async_insert=0 FORMAT TSV \t\r\n1\t2\n", True,
     (b"INSERT INTO t", b"SETTINGS async_insert=0", "TSV", b"1\t2\n")),
    (b"-- why\nINSERT INTO t -- note\nFORMAT JSONEachRow {}", True,
     (b"-- why\nINSERT INTO t -- note", b"", "JSONEachRow", b"{}")),
    (b"INSERT INTO t VALUES (1, 'FORMAT x')", True, None),
    (b"INSERT INTO t SELECT 1", True, None),
    (b"SELECT 1 FORMAT JSON", True, None),
])
def test_the_data_of_an_insert_starts_where_clickhouse_reads_it(text, eof, expected):
    found = parse_insert_head(text, eof)
    if expected is None or expected is NEED_MORE:
        assert found is expected
    else:
        assert (found.target, found.settings, found.fmt, text[found.data_offset:]) == expected


def authorized(server, url: str, data: bytes | None = None, user: str = "default") -> urllib.request.Request:
    """A request with the server's token as the password of HTTP basic auth."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    credentials = base64.b64encode(f"{user}:{server.token}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    return request


def test_a_form_reads_its_named_fields_and_refuses_a_nameless_one_as_a_bad_request(server):
    def post_form(fields: list[tuple[str, str]]) -> urllib.request.Request:
        body = b"".join(b"--b0undary\r\n" + f"Content-Disposition: {disposition}\r\n\r\n{value}\r\n".encode()
                        for disposition, value in fields) + b"--b0undary--\r\n"
        request = authorized(server, f"http://127.0.0.1:{server.port}/", data=body)
        request.add_header("Content-Type", "multipart/form-data; boundary=b0undary")
        return request

    with urllib.request.urlopen(post_form([('form-data; name="query"', "SELECT 40 + 2")])) as response:
        assert response.read() == b"42\n"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post_form([('form-data; name="query"', "SELECT 1"), ("form-data", "x")]))
    assert refused.value.code == 400
    assert refused.value.headers["X-ClickHouse-Exception-Code"] == "36"
    assert b"a form field without a name" in refused.value.read()


def test_ping_and_a_get_query_answer_like_a_server(server):
    assert urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ping").read() == b"Ok.\n"
    with urllib.request.urlopen(authorized(server, f"http://127.0.0.1:{server.port}/?query=SELECT%201%2B1%20AS%20x%20"
                                                   "FORMAT%20JSONEachRow&query_id=q-1")) as response:
        assert response.read() == b'{"x":2}\n'
        assert response.headers["X-ClickHouse-Query-Id"] == "q-1"
        assert response.headers["X-ClickHouse-Format"] == "JSONEachRow"
        assert response.headers["X-ClickHouse-Timezone"]
        assert response.headers["X-ClickHouse-Server-Display-Name"]
        assert '"read_rows"' in response.headers["X-ClickHouse-Summary"]
    # A GET request is read-only, as on a server.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(authorized(server, f"http://127.0.0.1:{server.port}/?query=CREATE%20DATABASE%20nope"))
    assert refused.value.code == 500
    assert refused.value.headers["X-ClickHouse-Exception-Code"] == "164"
    assert b"readonly" in refused.value.read()


def test_insert_and_select_round_trip_several_column_types(server, db):
    client = server.client()
    assert client.server_version and client.compression  # the client negotiated as with a server
    table = make_table(client, db)
    rows = sample_rows(5_000)
    summary = client.insert(table, rows, column_names=COLUMNS)
    assert summary.written_rows == 5_000
    got = client.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id").result_rows
    assert len(got) == 5_000
    for (rid, ts, labels, codes, route, latency), expected in zip(got, rows):
        assert [rid, ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts, labels, codes, route, latency] == expected
    types = dict(client.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 't'").result_rows)
    assert types["route"] == "LowCardinality(String)" and types["latency"] == "Nullable(Float32)"
    # Parameters go through as bind parameters of the engine.
    assert client.query(f"SELECT count() FROM {table} WHERE route = {{r:String}} AND has(codes, {{c:UInt16}})",
                        parameters={"r": "/r/1", "c": 500}).result_rows == [(1_250,)]
    assert client.query("SELECT {s:String}", parameters={"s": "tab\there 'quoted'"}).result_rows == [("tab\there 'quoted'",)]
    client.close()


@pytest.mark.parametrize("compress", [False, "lz4", "gzip", "zstd"])
def test_insert_bodies_compressed_each_way_are_stored(server, db, compress):
    client = server.client(compress=compress)
    table = make_table(client, db)
    client.insert(table, sample_rows(3_000, seed=1), column_names=COLUMNS)
    assert client.query(f"SELECT count(), uniqExact(id) FROM {table}").result_rows == [(3_000, 3_000)]
    client.close()


def test_inserts_in_other_formats_with_the_statement_in_the_url_or_the_body(server, db):
    client = server.client()
    client.command(f"CREATE TABLE {db}.kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    client.command(f"INSERT INTO {db}.kv FORMAT JSONEachRow", data='{"k": "a", "v": 1}\n{"k": "b", "v": 2}\n')
    client.raw_insert(f"{db}.kv", ["k", "v"], "c,3\nd,4\n", fmt="CSV")
    client.raw_insert(f"{db}.kv", ["k", "v"], gzip.compress(b"e\t5\n"), fmt="TabSeparated", compression="gzip")
    client.command(f"INSERT INTO {db}.kv VALUES ('f', 6)")
    assert client.query(f"SELECT k, v FROM {db}.kv ORDER BY k").result_rows == [
        ("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)]
    client.close()


def test_an_insert_repeated_with_its_deduplication_token_is_stored_once(server, db):
    client = server.client()
    table = make_table(client, db)
    rows = sample_rows(1_000, seed=2)
    for _ in range(2):
        client.insert(table, rows, column_names=COLUMNS,
                      settings={"insert_deduplicate": 1, "insert_deduplication_token": "sink:t:0:0-999"})
    client.insert(table, rows[:10], column_names=COLUMNS,
                  settings={"insert_deduplicate": 1, "insert_deduplication_token": "sink:t:0:1000-1009"})
    assert client.query(f"SELECT count() FROM {table}").result_rows == [(1_010,)]
    client.close()


def test_engine_errors_surface_as_database_errors_with_the_engine_message(server, db):
    client = server.client()
    with pytest.raises(DatabaseError) as missing:
        client.query(f"SELECT * FROM {db}.no_such_table")
    assert missing.value.code == 60
    assert "no_such_table" in str(missing.value) and "UNKNOWN_TABLE" in str(missing.value)
    with pytest.raises(DatabaseError) as syntax:
        client.command("SELEC 1")
    assert syntax.value.code == 62 and "Syntax error" in str(syntax.value)
    with pytest.raises(DatabaseError) as unknown_setting:
        client.query("SELECT 1", settings={"no_such_setting_at_all": 1})
    assert "no_such_setting_at_all" in str(unknown_setting.value)
    with pytest.raises(DatabaseError) as readonly:
        client.command(f"DROP DATABASE {db}", settings={"readonly": 1})
    assert readonly.value.code == 164
    # None of it left a trace on the connection the next statements use.
    assert client.command("SELECT 1") == 1
    assert client.command(f"EXISTS DATABASE {db}") == 1
    client.close()


def test_a_request_settings_apply_to_that_request_only(server, db):
    client = server.client()
    limited = client.query("SELECT number FROM numbers(100)",
                           settings={"max_result_rows": 10, "result_overflow_mode": "break", "max_block_size": 10})
    assert 10 <= len(limited.result_rows) < 100
    assert len(client.query("SELECT number FROM numbers(100)").result_rows) == 100
    other = server.client()
    assert other.command("SELECT getSetting('max_result_rows')") == 0
    other.close()
    client.close()


def test_set_and_use_last_for_their_session_only(server, db):
    first = server.client()
    second = server.client()
    first.command("SET max_threads = 1")
    first.command(f"USE {db}")
    assert first.command("SELECT getSetting('max_threads')") == 1
    assert first.command("SELECT currentDatabase()") == db
    assert second.command("SELECT getSetting('max_threads')") != 1
    assert second.command("SELECT currentDatabase()") == "default"
    # A request's own settings come and go; the session's SET stays.
    assert first.command("SELECT getSetting('max_threads')", settings={"max_threads": 2}) == 2
    assert first.command("SELECT getSetting('max_threads')") == 1
    first.close()
    second.close()


def test_a_body_cut_off_before_its_end_stores_nothing(server, db):
    client = server.client()
    table = make_table(client, db)
    client.close()
    sock = socket.create_connection(("127.0.0.1", server.port))
    statement = f"INSERT INTO {table} (id, ts, labels, codes, route, latency) FORMAT TabSeparated\n".encode()
    row = b"00000000-0000-0000-0000-000000000001\t2026-03-01 12:00:00.000\t{}\t[]\t/r\t\\N\n"
    credentials = base64.b64encode(f"default:{server.token}".encode())
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + credentials
                 + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = statement + row * 10
    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    sock.sendall(b"1000\r\n" + row)  # announces 4096 bytes, sends one row, then the client dies
    sock.close()
    client = server.client()
    # The server saw the connection go; a later complete request runs, the cut one never did.
    full = authorized(server, f"http://127.0.0.1:{server.port}/", data=statement + row)
    urllib.request.urlopen(full).read()
    assert client.command(f"SELECT count() FROM {table}") == 1
    client.close()


@pytest.mark.slow
def test_migrations_apply_through_it_once_even_from_two_workers_at_once(server, tmp_path):
    database = f"m_{uuid.uuid4().hex[:10]}"
    settings = load_settings({"HUB_HOME": str(tmp_path / "home")}).with_overrides(
        clickhouse_url=server.url, database=database)
    stores = [open_store(settings), open_store(settings)]
    results: list = [None, None]
    errors: list = []

    def run(i: int) -> None:
        try:
            results[i] = migrate(stores[i], settings)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    numbers = [m.number for m in discover()]
    assert sorted({m.number for r in results for m in r}) == numbers
    recorded = stores[0].query(f"SELECT number FROM {database}.schema_migrations ORDER BY number").result_rows
    assert [r[0] for r in recorded] == numbers  # each once
    assert migrate(stores[0], settings) == []
    tables = {r[0] for r in stores[0].query(
        "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": database}).result_rows}
    assert {"sink_ledger", "requests", "dead_letters", "schema_migrations"} <= tables
    for store in stores:
        store.close()


def test_a_token_is_required_when_set(tmp_path):
    with StoreServerProcess.start(tmp_path / "secured", HUB_STORE_TOKEN="s3cret") as secured:
        client = secured.client()  # the URL carries the token as the password
        assert client.command("SELECT 1") == 1
        client.close()
        with pytest.raises(DatabaseError) as refused:
            clickhouse_connect.get_client(host="127.0.0.1", port=secured.port, password="wrong")
        assert "516" in str(refused.value) or "Authentication failed" in str(refused.value)


@pytest.mark.slow
def test_serve_refuses_a_store_already_open_and_an_open_address_without_token(server):
    env = dict(server.env, HUB_STORE_PORT=str(free_port()))
    second = subprocess.run([sys.executable, "-m", "hub.cli.main", "store", "serve"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert "open in another process" in second.stderr and "Traceback" not in second.stderr
    exposed = subprocess.run([sys.executable, "-m", "hub.cli.main", "store", "serve", "--host", "0.0.0.0"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert exposed.returncode == 2 and "HUB_STORE_TOKEN" in exposed.stderr


def wait_for_ping(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.read() == b"Ok.\n":
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("store server not answering")


@pytest.mark.slow
def test_with_no_token_set_one_is_generated_into_the_home_and_required(tmp_path):
    home, port = tmp_path / "fresh", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_HOME": str(home), "HUB_STORE_PORT": str(port)})
    process = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "store", "serve"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_ping(port, process)
        token_file = home / "store-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32

        def status(credentials: str | None) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/?query=SELECT%201")
            if credentials is not None:
                request.add_header("Authorization", "Basic " + base64.b64encode(credentials.encode()).decode())
            try:
                with urllib.request.urlopen(request) as response:
                    assert response.read() == b"1\n"
                    return response.status
            except urllib.error.HTTPError as refused:
                assert refused.headers["X-ClickHouse-Exception-Code"] == "516"
                return refused.code

        # Nothing, a wrong password, the token as a user name: refused. Any user name with the token: in.
        assert [status(c) for c in (None, "default:", "default:wrong", f"{token}:")] == [401] * 4
        assert status(f"default:{token}") == status(f"anyone:{token}") == 200
        with pytest.raises(DatabaseError, match="516|Authentication failed"):
            clickhouse_connect.get_client(host="127.0.0.1", port=port)

        # The hub's own clients with this home find the token themselves: HUB_CLICKHOUSE_URL has none.
        settings = load_settings({"HUB_HOME": str(home), "HUB_CLICKHOUSE_URL": f"http://127.0.0.1:{port}",
                                  "HUB_DATABASE": "own"})
        store = open_store(settings)
        try:
            store.command("CREATE TABLE own.kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k "
                          "SETTINGS non_replicated_deduplication_window = 100")
            store.insert("own.kv", [["a", 1], ["b", 2]], ["k", "v"], token="kv:0-1")
            store.insert("own.kv", [["a", 1], ["b", 2]], ["k", "v"], token="kv:0-1")  # dropped by its token
            assert store.scalar("SELECT sum(v) FROM own.kv") == 3
            assert run_readonly(store, "SELECT count() FROM own.kv")["rows"] == [[2]]  # the reader's connection too
        finally:
            store.close()
        # A client of another home has no token: refused.
        stranger = load_settings({"HUB_HOME": str(tmp_path / "other"), "HUB_CLICKHOUSE_URL": f"http://127.0.0.1:{port}"})
        with pytest.raises(Exception, match="516|Authentication failed"):
            open_store(stranger)
    finally:
        process.terminate()
        process.wait(30)
    # The next start keeps the same token.
    process = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "store", "serve"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_ping(port, process)
        assert (home / "store-token").read_text().strip() == token
    finally:
        process.terminate()
        process.wait(30)


REACHING_OUTSIDE = [
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT file('/etc/passwd')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:9', system.one)",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV', 'a String')",
    "SELECT * FROM executable('x.sh', 'CSV', 'a String')",
    "SELECT * FROM `file`('/etc/passwd', 'LineAsString')",
    "SELECT filesystemCapacity()",
    "SELECT 1 INTO OUTFILE '{out}'",
    "SELECT 1 INTO OUTFILE '{out}' FORMAT CSV",
    "INSERT INTO FUNCTION file('{out}', 'CSV', 'a UInt8') SELECT 1",
    "INSERT INTO {db}.kv FROM INFILE '/etc/passwd' FORMAT LineAsString",
    "CREATE TABLE {db}.web (a String) ENGINE = URL('http://127.0.0.1:9/', 'CSV')",
    "CREATE TABLE {db}.disk (a String) ENGINE = File('CSV', '{out}')",
    "CREATE TABLE {db}.far AS remote('127.0.0.1:9', system.one)",
    "CREATE TABLE {db}.elsewhere (a UInt8) ENGINE = MergeTree ORDER BY a "
    "SETTINGS disk = disk(type = local, path = '{out}/')",
    "CREATE DICTIONARY {db}.d (k UInt64, v String) PRIMARY KEY k SOURCE(HTTP(url 'http://127.0.0.1:9/' format 'CSV')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "SYSTEM DROP DNS CACHE",
    "SYSTEM FLUSH LOGS",
    "system shutdown",
    "BACKUP TABLE {db}.kv TO File('{out}')",
]


@pytest.mark.parametrize("template", REACHING_OUTSIDE)
def test_no_client_reaches_files_urls_programs_or_system_even_with_the_token(server, db, tmp_path, template):
    client = server.client()  # the token's holder
    client.command(f"CREATE TABLE IF NOT EXISTS {db}.kv (k String) ENGINE = MergeTree ORDER BY k")
    out = tmp_path / "written"
    with pytest.raises(DatabaseError) as refused:
        client.command(template.format(db=db, out=out))
    assert refused.value.code == 497 and "refused by the store server" in str(refused.value), str(refused.value)
    assert not out.exists()
    # Writing the hub's tables is untouched: DDL and inserts go on.
    client.command(f"CREATE TABLE IF NOT EXISTS {db}.after (a UInt8) ENGINE = MergeTree ORDER BY a")
    client.insert(f"{db}.after", [[1]], column_names=["a"])
    assert client.command(f"SELECT count() FROM {db}.after") == 1
    assert {r[0] for r in client.query(f"SHOW TABLES FROM {db}").result_rows} == {"kv", "after"}
    client.close()
