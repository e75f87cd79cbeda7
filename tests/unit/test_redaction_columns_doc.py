"""docs/redaction.md lists every declared column exactly as the declarations say."""

from __future__ import annotations

from pathlib import Path

from hub.redaction.columns import DECLARATIONS, KINDS, SHAPES, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "redaction.md"


def test_the_column_table_in_the_docs_is_generated_from_the_declarations():
    text = DOC.read_text()
    begin, end = "<!-- columns:begin -->\n", "<!-- columns:end -->"
    assert begin in text and end in text
    shown = text.split(begin, 1)[1].split(end, 1)[0]
    assert shown == markdown_table(), "regenerate the table in docs/redaction.md with: python -m hub.redaction.columns"


def test_every_declaration_names_a_known_kind_and_shape():
    for table, columns in DECLARATIONS.items():
        for column, decl in columns.items():
            assert decl.kind in KINDS, (table, column)
            assert (decl.shape in SHAPES) == (decl.kind in ("struct", "structs")), (table, column)
