"""The SQL guard: every way to write, alter, drop, read secrets or lift the limits is refused with
its reason, however it is hidden; reading statements pass and come back normalised."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import UserError
from hub.sql import QueryRefused, check_query
from hub.sql.functions import REFUSED as REFUSED_FUNCTIONS
from hub.sql.functions import REFUSED_TABLE_FUNCTIONS
from hub.sql.guard import WRITE_KEYWORDS

# (query, rule, words the one-line reason must contain)
REFUSED = [
    ("INSERT INTO hub.requests VALUES (1)", "statement", "not INSERT"),
    ("insert into hub.requests select * from hub.requests", "statement", "not INSERT"),
    ("ALTER TABLE hub.requests DELETE WHERE 1", "statement", "not ALTER"),
    ("DROP TABLE hub.requests", "statement", "not DROP"),
    ("DROP DATABASE hub", "statement", "not DROP"),
    ("CREATE TABLE x (a UInt8) ENGINE = Memory", "statement", "not CREATE"),
    ("CREATE USER eve IDENTIFIED BY 'x'", "statement", "not CREATE"),
    ("TRUNCATE TABLE hub.requests", "statement", "not TRUNCATE"),
    ("RENAME TABLE hub.requests TO hub.old", "statement", "not RENAME"),
    ("GRANT ALL ON *.* TO eve", "statement", "not GRANT"),
    ("REVOKE ALL ON *.* FROM eve", "statement", "not REVOKE"),
    ("SET readonly = 0", "statement", "not SET"),
    ("SET max_result_rows = 0", "statement", "not SET"),
    ("SYSTEM STOP MERGES", "statement", "not SYSTEM"),
    ("SYSTEM DROP DNS CACHE", "statement", "not SYSTEM"),
    ("KILL QUERY WHERE 1", "statement", "not KILL"),
    ("OPTIMIZE TABLE hub.requests FINAL", "statement", "not OPTIMIZE"),
    ("ATTACH TABLE hub.requests", "statement", "not ATTACH"),
    ("DETACH TABLE hub.requests", "statement", "not DETACH"),
    ("EXCHANGE TABLES hub.a AND hub.b", "statement", "not EXCHANGE"),
    ("UNDROP TABLE hub.requests", "statement", "not UNDROP"),
    ("DELETE FROM hub.requests WHERE 1", "statement", "not DELETE"),
    ("UPDATE hub.requests SET status = 200 WHERE 1", "statement", "not UPDATE"),
    ("USE system", "statement", "not USE"),
    ("BACKUP TABLE hub.requests TO Disk('d', 'x')", "statement", "not BACKUP"),
    ("CHECK TABLE hub.requests", "statement", "not CHECK"),
    ("WATCH hub.live", "statement", "not WATCH"),
    ("BEGIN TRANSACTION", "statement", "not BEGIN"),
    ("REPLACE TABLE hub.requests AS SELECT 1", "statement", "not REPLACE"),
    ("(INSERT INTO t VALUES (1))", "statement", "not INSERT"),
    # several statements, and a ';' hiding in the wrong place
    ("SELECT 1; DROP TABLE x", "multiple-statements", "exactly one statement"),
    ("SELECT 1;DROP TABLE x;", "multiple-statements", "exactly one statement"),
    ("SELECT 1;;", "multiple-statements", "exactly one statement"),
    ("SELECT ';'; SELECT 2", "multiple-statements", "exactly one statement"),
    ("SELECT 1 -- \n; DROP TABLE x", "multiple-statements", "exactly one statement"),
    ("SELECT 1 /* ; */ ; DROP TABLE x", "multiple-statements", "exactly one statement"),
    # settings, however written
    ("SELECT 1 SETTINGS readonly=0", "settings", "SETTINGS clause"),
    ("SELECT 1 /* */ SETTINGS max_execution_time=0", "settings", "SETTINGS clause"),
    ("SELECT 1 settings max_result_rows = 0", "settings", "SETTINGS clause"),
    ("SELECT * FROM (SELECT 1 SETTINGS max_result_rows = 0)", "settings", "SETTINGS clause"),
    ("SELECT 1 --\nSETTINGS readonly = 0", "settings", "SETTINGS clause"),
    ("SELECT 1 #x\nSETTINGS readonly = 0", "settings", "SETTINGS clause"),
    ("SELECT 1 /* nested /* comment */ still */ SETTINGS readonly = 0", "settings", "SETTINGS clause"),
    ("SELECT 1 SET/**/TINGS readonly = 0", "keyword", "SET changes settings"),
    ("WITH x AS (SELECT 1) SELECT * FROM x SETTINGS readonly = 0", "settings", "SETTINGS clause"),
    ("EXPLAIN SELECT 1 SETTINGS readonly = 0", "settings", "SETTINGS clause"),
    ("DESCRIBE (SELECT 1 SETTINGS readonly = 0)", "settings", "SETTINGS clause"),
    # keywords hidden by comments: a comment separates tokens
    ("DR/**/OP TABLE x", "statement", "not DR"),
    ("/* hi */ DROP TABLE x", "statement", "not DROP"),
    ("-- a comment\nDROP TABLE x", "statement", "not DROP"),
    ("-- a comment\r\nDROP TABLE x", "statement", "not DROP"),
    ("# a comment\nDROP TABLE x", "statement", "not DROP"),
    ("/* /* nested */ */ DROP TABLE x", "statement", "not DROP"),
    # writes inside reading statements
    ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "keyword", "INSERT writes"),
    ("SELECT * FROM (INSERT INTO t VALUES (1))", "keyword", "INSERT writes"),
    ("EXPLAIN INSERT INTO t VALUES (1)", "explain", "EXPLAIN must be followed by a SELECT"),
    ("EXPLAIN AST ALTER TABLE t DELETE WHERE 1", "explain", "EXPLAIN must be followed by a SELECT"),
    ("EXPLAIN TABLE OVERRIDE mysql('h', 'd', 't', 'u', 'p') COLUMNS (a UInt8)", "explain", "EXPLAIN TABLE"),
    ("EXPLAIN PLAN header = 1 DROP TABLE x", "explain", "EXPLAIN must be followed by a SELECT"),
    ("SELECT 1 UNION ALL SELECT 2 FROM t WHERE 1 AND DROP", "keyword", "DROP drops objects"),
    # output elsewhere, or in another format
    ("SELECT 1 INTO OUTFILE 'x'", "outfile", "INTO OUTFILE"),
    ("SELECT 1 INTO OUTFILE '/tmp/x' TRUNCATE", "outfile", "INTO OUTFILE"),
    ("SELECT 1 FORMAT Native", "format", "FORMAT clause"),
    ("SELECT 1 format JSONEachRow", "format", "FORMAT clause"),
    ("SELECT 1 /* x */ FORMAT/**/TSV", "format", "FORMAT clause"),
    # table functions that reach outside
    ("SELECT * FROM url('http://169.254.169.254/latest/meta-data/', 'LineAsString')", "function", "url()"),
    ("SELECT * FROM file('/etc/passwd')", "function", "file()"),
    ("SELECT * FROM FILE ('/etc/passwd')", "function", "FILE()"),
    ("SELECT * FROM `file`('/etc/passwd')", "function", "file()"),
    ('SELECT * FROM "url"(\'http://x\')', "function", "url()"),
    ("SELECT * FROM file/**/('/etc/passwd')", "function", "file()"),
    ("SELECT * FROM s3('https://b.s3.amazonaws.com/k.csv')", "function", "s3()"),
    ("SELECT * FROM remote('10.0.0.1', system.one)", "function", "remote()"),
    ("SELECT * FROM remoteSecure('10.0.0.1', default.t)", "function", "remoteSecure()"),
    ("SELECT * FROM mysql('h:3306', 'db', 't', 'u', 'p')", "function", "mysql()"),
    ("SELECT * FROM postgresql('h', 'db', 't', 'u', 'p')", "function", "postgresql()"),
    ("SELECT * FROM executable('x.sh', 'TSV', 'a String')", "function", "executable()"),
    ("SELECT * FROM input('a String')", "function", "input()"),
    ("SELECT * FROM clusterAllReplicas('c', system.one)", "function", "clusterAllReplicas()"),
    ("SELECT * FROM hdfs('hdfs://h/f', 'TSV', 'a String')", "function", "hdfs()"),
    ("SELECT * FROM azureBlobStorage('x')", "function", "azureBlobStorage()"),
    ("SELECT * FROM iceberg('x')", "function", "iceberg()"),
    ("SELECT * FROM deltaLake('x')", "function", "deltaLake()"),
    ("SELECT * FROM sqlite('/etc/db.sqlite', 't')", "function", "sqlite()"),
    ("SELECT * FROM jdbc('x', 't')", "function", "jdbc()"),
    ("SELECT * FROM odbc('x', 't')", "function", "odbc()"),
    ("SELECT * FROM mongodb('h', 'd', 'c', 'u', 'p', 'a String')", "function", "mongodb()"),
    ("SELECT * FROM redis('h', 'k', 'k String')", "function", "redis()"),
    ("SELECT * FROM merge(system, '^users$')", "function", "merge()"),
    ("SELECT * FROM loop(system, users)", "function", "loop()"),
    ("SELECT * FROM dictionary('secrets')", "function", "dictionary()"),
    ("SELECT * FROM view(SELECT * FROM file('/etc/passwd'))", "function", "file()"),
    # system tables with secrets or other people's queries
    ("SELECT * FROM system.users", "system-table", "system.users"),
    ("SELECT * FROM system.roles", "system-table", "system.roles"),
    ("SELECT * FROM system.grants", "system-table", "system.grants"),
    ("SELECT * FROM system.settings_profiles", "system-table", "system.settings_profiles"),
    ("SELECT * FROM system.quotas", "system-table", "system.quotas"),
    ("SELECT * FROM system.named_collections", "system-table", "system.named_collections"),
    ("SELECT * FROM system.zookeeper WHERE path = '/'", "system-table", "system.zookeeper"),
    ("SELECT query FROM system.processes", "system-table", "system.processes"),
    ("SELECT query FROM system.query_log", "system-table", "system.query_log"),
    ("SELECT * FROM system.session_log", "system-table", "system.session_log"),
    ("SELECT * FROM system.disks", "system-table", "system.disks"),
    ("SELECT * FROM SYSTEM.USERS", "system-table", "system.USERS"),
    ('SELECT * FROM "system"."users"', "system-table", "system.users"),
    ("SELECT * FROM `system` . `users`", "system-table", "system.users"),
    ("SELECT * FROM system/**/./**/users", "system-table", "system.users"),
    ("DESCRIBE system.users", "system-table", "system.users"),
    ("SHOW CREATE TABLE system.users", "system-table", "system.users"),
    ("SELECT * FROM hub.requests WHERE route IN (SELECT name FROM system.users)", "system-table", "system.users"),
    # SHOW of access control and internals
    ("SHOW USERS", "show", "SHOW USERS"),
    ("SHOW GRANTS", "show", "SHOW GRANTS"),
    ("SHOW ROLES", "show", "SHOW ROLES"),
    ("SHOW ACCESS", "show", "SHOW ACCESS"),
    ("SHOW PROCESSLIST", "show", "SHOW PROCESSLIST"),
    ("SHOW QUOTA", "show", "SHOW QUOTA"),
    ("SHOW CREATE USER default", "show", "SHOW CREATE USER"),
    ("SHOW CREATE QUOTA q", "show", "SHOW CREATE QUOTA"),
    ("SHOW CREATE ROW POLICY p ON t", "show", "SHOW CREATE ROW"),
    ("SHOW NAMED COLLECTIONS", "show", "SHOW NAMED"),
    ("SHOW CLUSTERS", "show", "SHOW CLUSTERS"),
    # unicode tricks and odd characters outside strings
    ("SELECT 1 \u037e DROP TABLE x", "character", "U+037E"),          # Greek question mark, looks like ';'
    ("\u0044\u0420\u039fP TABLE x", "character", "U+0420"),           # Cyrillic R, Greek O
    ("SELECT 1\u00a0SETTINGS readonly=0", "character", "U+00A0"),     # no-break space
    ("DR\u200bOP TABLE x", "character", "U+200B"),                    # zero-width space
    ("\ufeffSELECT 1", "character", "U+FEFF"),                        # byte-order mark
    ("SELECT 1 \uff33\uff25\uff34\uff34\uff29\uff2e\uff27\uff33 readonly=0", "character", "U+FF33"),  # full width
    ("SELECT $$ ' $$ ; DROP TABLE x", "character", "heredoc"),
    ("SELECT 1 \\; DROP TABLE x", "character", "'\\\\'"),
    ("SELECT '\x00'; DROP TABLE x", "character", "NUL"),
    ("SELECT 1 \x01", "character", "U+0001"),
    # unterminated strings, names and comments (they would swallow what the hub appends)
    ("SELECT 'abc", "unterminated", "string"),
    ("SELECT 'abc\\'", "unterminated", "string"),
    ("SELECT \"abc", "unterminated", "quoted name"),
    ("SELECT `abc", "unterminated", "quoted name"),
    ("SELECT 1 /* forever", "unterminated", "comment"),
    ("SELECT 1 /* /* nested */", "unterminated", "comment"),
    ("", "empty", "empty"),
    ("   -- only a comment\n", "empty", "empty"),
    (";", "empty", "empty"),
    ("SELECT '" + "x" * 100_001 + "'", "too-long", "longer than"),
]


@pytest.mark.parametrize("query,rule,reason", REFUSED, ids=[f"{i:03d}" for i in range(len(REFUSED))])
def test_refused_with_its_reason(query, rule, reason):
    with pytest.raises(QueryRefused) as caught:
        check_query(query)
    assert caught.value.rule == rule, str(caught.value)
    message = str(caught.value)
    assert reason.lower() in message.lower()
    assert "\n" not in message and message.startswith("query refused: ")
    assert isinstance(caught.value, UserError)


ALLOWED = [
    ("SELECT 1", "SELECT 1"),
    ("select count() from hub.requests;", "select count() from hub.requests"),
    ("SELECT 'DROP TABLE x' AS s", "SELECT 'DROP TABLE x' AS s"),
    ("SELECT 'a;b' AS s;", "SELECT 'a;b' AS s"),
    ("SELECT 'it''s; DROP', 'x\\'; DROP TABLE y; --'", "SELECT 'it''s; DROP', 'x\\'; DROP TABLE y; --'"),
    ("SELECT 1 -- DROP TABLE x; SETTINGS readonly=0", "SELECT 1"),
    ("SELECT 1 /* DROP TABLE x; */ + 1", "SELECT 1 + 1"),
    ("SELECT /* /* nested */ DROP */ 1", "SELECT 1"),
    ("SELECT \"drop\", `settings` FROM t", "SELECT \"drop\", `settings` FROM t"),
    ("SELECT 'ünïcödé; 😀' AS s, \"таблица\"", "SELECT 'ünïcödé; 😀' AS s, \"таблица\""),
    ("WITH x AS (SELECT route FROM hub.requests) SELECT count() FROM x",
     "WITH x AS (SELECT route FROM hub.requests) SELECT count() FROM x"),
    ("SELECT * FROM (SELECT route, count() AS n FROM hub.requests GROUP BY route) WHERE n > 1",
     "SELECT * FROM (SELECT route, count() AS n FROM hub.requests GROUP BY route) WHERE n > 1"),
    ("SELECT route FROM hub.requests WHERE route IN (SELECT route FROM hub.requests WHERE status >= 500)",
     "SELECT route FROM hub.requests WHERE route IN (SELECT route FROM hub.requests WHERE status >= 500)"),
    ("(SELECT 1) UNION ALL (SELECT 2)", "(SELECT 1) UNION ALL (SELECT 2)"),
    ("SHOW TABLES FROM hub", "SHOW TABLES FROM hub"),
    ("SHOW TABLES FROM system", "SHOW TABLES FROM system"),
    ("SHOW DATABASES", "SHOW DATABASES"),
    ("SHOW COLUMNS FROM hub.requests", "SHOW COLUMNS FROM hub.requests"),
    ("SHOW CREATE TABLE hub.requests", "SHOW CREATE TABLE hub.requests"),
    ("DESCRIBE hub.requests", "DESCRIBE hub.requests"),
    ("DESC TABLE hub.requests", "DESC TABLE hub.requests"),
    ("EXPLAIN SELECT count() FROM hub.requests", "EXPLAIN SELECT count() FROM hub.requests"),
    ("EXPLAIN PLAN header = 1 SELECT 1", "EXPLAIN PLAN header = 1 SELECT 1"),
    ("EXPLAIN QUERY TREE SELECT 1", "EXPLAIN QUERY TREE SELECT 1"),
    ("EXPLAIN ESTIMATE SELECT count() FROM hub.requests", "EXPLAIN ESTIMATE SELECT count() FROM hub.requests"),
    ("SELECT format('{} {}', route, status) FROM hub.requests", "SELECT format('{} {}', route, status) FROM hub.requests"),
    ("SELECT formatDateTime(now(), '%F') AS d", "SELECT formatDateTime(now(), '%F') AS d"),
    ("SELECT name FROM system.tables WHERE database = 'hub'", "SELECT name FROM system.tables WHERE database = 'hub'"),
    ("SELECT name, type FROM system.columns", "SELECT name, type FROM system.columns"),
    ("SELECT * FROM information_schema.tables", "SELECT * FROM information_schema.tables"),
    ("SELECT number FROM numbers(10)", "SELECT number FROM numbers(10)"),
    ("SELECT URLHierarchy(route), getSetting('max_result_rows')", "SELECT URLHierarchy(route), getSetting('max_result_rows')"),
    ("SELECT t.1, 1e-3, 0x1F, .5, a::String, x -> x + 1", "SELECT t.1, 1e-3, 0x1F, .5, a::String, x -> x + 1"),
    ("SELECT start, end, phase FROM hub.experiment_phases", "SELECT start, end, phase FROM hub.experiment_phases"),
    ("SELECT\n    route\nFROM\thub.requests\n", "SELECT route FROM hub.requests"),
    ("SELECT a/**/b", "SELECT a b"),
    ("SELECT {experiment:String}", "SELECT {experiment:String}"),
]


@pytest.mark.parametrize("query,normalised", ALLOWED, ids=[f"{i:03d}" for i in range(len(ALLOWED))])
def test_allowed_and_normalised(query, normalised):
    assert check_query(query) == normalised
    assert check_query(check_query(query)) == normalised  # normalising is stable


def test_every_refused_function_and_table_function_is_refused_in_any_case_and_quoted():
    for name in sorted(set(REFUSED_TABLE_FUNCTIONS) | set(REFUSED_FUNCTIONS)):
        for spelled in (name, name.upper(), f'"{name}"', f"`{name}`"):
            for query in (f"SELECT * FROM {spelled}('x')", f"SELECT {spelled}('x')",
                          f"SELECT 1 FROM hub.requests WHERE route IN (SELECT * FROM {spelled}('x'))"):
                with pytest.raises(QueryRefused) as caught:
                    check_query(query)
                assert caught.value.rule == "function", query


@pytest.mark.parametrize("query,reason", [
    ("SELECT * FROM mergeTreeIndex('hub', 'requests')", "mergeTreeIndex() is not allowed: it reads the store's part"),
    ("SELECT getServerSetting('path')", "getServerSetting() is not allowed: it reads the server's configuration"),
    ("SELECT getMergeTreeSetting('index_granularity')", "server's configuration"),
    ("SELECT file('/etc/passwd')", "file() is not allowed"),
    ("SELECT * FROM filesystem('/')", "reads or writes files"),
    ("SELECT * FROM python(x)", "runs a program"),
    ("SELECT hostName(), FQDN()", "hostName() is not allowed"),
    ("SELECT dictGet('d', 'a', 1)", "dictionaries"),
    ("SELECT sleepEachRow(3) FROM numbers(10)", "stalls the engine"),
    ("SELECT aiGenerate('x')", "external model service"),
    ("SELECT getClientHTTPHeader('Authorization')", "HTTP details"),
    # a function the list does not know, as one a later engine version adds: refused by default
    ("SELECT someFunctionOfATomorrowEngine(1)", "is not on the list"),
    ("SELECT * FROM someTableFunctionOfATomorrowEngine('x')", "is not on the list"),
    ("SELECT countIfNotACombinator(1)", "is not on the list"),
])
def test_calls_off_the_allow_list_are_refused_with_the_reason(query, reason):
    with pytest.raises(QueryRefused) as caught:
        check_query(query)
    assert caught.value.rule == "function" and reason in str(caught.value), str(caught.value)


@pytest.mark.parametrize("query", [
    "SELECT countIf(status >= 500), sumArray([1]), uniqExactIf(route, status = 200), avgOrNull(latency_ms), "
    "quantilesTimingIf(0.5, 0.99)(latency_ms, status < 500), argMaxIf(route, latency_ms, 1), uniqMerge(s), "
    "sumForEach([1, 2]), groupArrayDistinct(route), countResample(0, 10, 1)(x, y) FROM hub.requests",
    "SELECT CAST(1 AS Nullable(Decimal(10, 2))), 1::LowCardinality(String), toDateTime64(now(), 3, 'UTC')",
    "SELECT route FROM hub.requests WHERE (status >= 500 OR error != '') AND route IN ('/a', '/b') "
    "AND NOT (latency_ms > 1) AND EXISTS (SELECT 1) GROUP BY ROLLUP(route) ORDER BY (route) LIMIT (10)",
    "SELECT row_number() OVER (PARTITION BY route ORDER BY event_time) FROM hub.requests",
    "SELECT * EXCEPT (route) FROM hub.requests LEFT JOIN (SELECT 1 AS x) AS j ON (1 = 1) USING (x)",
    "SELECT * FROM numbers(10) UNION ALL (SELECT * FROM generateSeries(1, 3))",
    "SELECT arrayMap(x -> x + 1, [1, 2]), if(1, 2, 3), multiIf(1, 2, 3), getSetting('max_result_rows')",
    "SELECT currentDatabase(), version(), timezone(), now(), today(), URLHierarchy('/a/b'), formatQuery('SELECT 1')",
    "DESCRIBE (SELECT 1)",
    "EXPLAIN SELECT * FROM view(SELECT 1)",
])
def test_allowed_calls_pass(query):
    assert check_query(query)


# ---- random token soups -------------------------------------------------------------------
KEYWORDS = sorted(WRITE_KEYWORDS)
HARMLESS = ["SELECT", "FROM", "WHERE", "hub.requests", "route", "count()", "1", "2.5", "(", ")", ",", "=", "+",
            "AND", "OR", "NOT", "GROUP", "BY", "ORDER", "LIMIT", "AS", "x", "*", "WITH", "status", "'a'"]
DISGUISED = ["'DROP TABLE x;'", "'it''s INSERT'", "'\\' DELETE'", "/* DROP; */", "/* /* ALTER */ SET */",
             "-- INSERT INTO x;\n", "\"drop\"", "`settings`", "'SETTINGS readonly=0'", "# KILL\n"]


@st.composite
def soups(draw):
    words = draw(st.lists(st.sampled_from(HARMLESS + DISGUISED), max_size=12))
    keyword = draw(st.sampled_from(KEYWORDS))
    spelled = draw(st.sampled_from([keyword, keyword.lower(), keyword.capitalize()]))
    words.insert(draw(st.integers(0, len(words))), spelled)
    separators = draw(st.lists(st.sampled_from([" ", "\n", "\t", " /* c */ ", "/**/"]),
                               min_size=len(words), max_size=len(words)))
    start = draw(st.sampled_from(["SELECT ", "WITH ", "EXPLAIN SELECT ", "SHOW TABLES ", "DESCRIBE ", ""]))
    tail = draw(st.sampled_from(["", ";", " -- end"]))
    return start + "".join(w + s for w, s in zip(words, separators)) + tail


@settings(max_examples=600, deadline=None)
@given(soups())
def test_token_soups_with_a_write_keyword_outside_strings_and_comments_never_pass(query):
    with pytest.raises(QueryRefused):
        check_query(query)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(HARMLESS + DISGUISED), max_size=12))
def test_soups_whose_keywords_are_all_in_strings_or_comments_are_not_refused_for_a_keyword(words):
    query = "SELECT " + " ".join(words) + "\n"
    try:
        check_query(query)
    except QueryRefused as refused:
        assert refused.rule not in ("keyword", "settings", "outfile"), (query, str(refused))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_either_passes_as_one_reading_statement_or_is_refused_in_one_line(text):
    try:
        normalised = check_query(text)
    except QueryRefused as refused:
        assert "\n" not in str(refused)
    else:
        assert normalised.split()[0].lstrip("(").upper() in ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
        assert check_query(normalised) == normalised


@pytest.mark.parametrize("query", [
    "SELECT name, value FROM system.settings WHERE name = 'max_result_rows'",
    "SELECT name FROM `system`.`settings`",
    "SELECT name FROM system . settings",
    "SELECT count() FROM system.settings AS s WHERE s.changed",
])
def test_the_settings_table_is_told_from_a_settings_clause(query):
    assert check_query(query)


@pytest.mark.parametrize("query", [
    "SELECT name FROM system.settings SETTINGS max_result_rows = 0",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT 1 FROM system.settings, t SETTINGS max_threads = 1",
])
def test_a_settings_clause_after_the_settings_table_is_still_refused(query):
    with pytest.raises(QueryRefused, match="SETTINGS clause is not allowed"):
        check_query(query)
