"""One lexer splits SQL into statements: a ``;`` inside a string, a quoted name or a comment is
part of its statement, for the migration runner as for the SQL guard."""

from __future__ import annotations

import pytest

from hub.settings import load_settings
from hub.sql.lexer import QueryRefused, split_statements
from hub.storage.migrations import render

MIGRATION = """-- a comment before the first statement; it holds a semicolon
CREATE TABLE IF NOT EXISTS {db}.notes
(
    note String DEFAULT 'a; b',  -- the default has a ';' too
    `odd;name` UInt8 DEFAULT 0   /* so has this quoted name; and this comment */
)
ENGINE = MergeTree ORDER BY note
COMMENT 'notes; kept whole';
# a hash comment; with a semicolon
INSERT INTO {db}.notes (note) VALUES ('it''s; escaped'), ('back\\'slash; too');
;
"""


def test_a_migration_is_split_at_semicolons_outside_strings_names_and_comments():
    statements = render(MIGRATION, load_settings({}).with_overrides(database="d"))
    assert len(statements) == 2, statements
    create, insert = statements
    assert create.startswith("CREATE TABLE IF NOT EXISTS d.notes") and create.endswith("COMMENT 'notes; kept whole'")
    assert "DEFAULT 'a; b',  -- the default has a ';' too\n" in create
    assert "`odd;name` UInt8 DEFAULT 0   /* so has this quoted name; and this comment */" in create
    assert insert == "INSERT INTO d.notes (note) VALUES ('it''s; escaped'), ('back\\'slash; too')"


def test_statements_without_a_final_semicolon_and_empty_ones():
    assert split_statements("SELECT 1;;\n SELECT ';' -- end") == ["SELECT 1", "SELECT ';'"]
    assert split_statements("-- only a comment;\n/* ; */") == []


def test_text_the_lexer_cannot_read_is_refused_not_split_somewhere():
    with pytest.raises(QueryRefused, match="never closed"):
        split_statements("CREATE TABLE t (a String DEFAULT 'open; x) ENGINE = Memory;")
