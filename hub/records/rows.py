"""Rows built by column name: a table's column constant gives the order, a mapping of each column to
the expression of its value gives the contents, and the two meet once, when the row builder is
compiled. Reordering a column constant moves every value with its column; a column without a value
(or a value without a column) is refused when the module that declares them is imported.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

__all__ = ["compile_row"]


def compile_row(table: str, columns: Sequence[str], values: Mapping[str, str], params: str,
                namespace: Mapping[str, Any] | None = None) -> Callable[..., tuple]:
    """``row(<params>)``: the row of ``table`` in the order of ``columns``, each column's value the
    Python expression ``values[column]`` of ``params`` (names in ``namespace`` are its globals).

    Compiled once into one tuple display, so a row costs what a tuple written by hand costs however
    the columns are ordered. Raises ``ValueError`` naming what differs when ``columns`` and
    ``values`` do not name the same columns, each once.
    """
    missing = [c for c in columns if c not in values]
    extra = [c for c in values if c not in columns]
    twice = sorted({c for c in columns if list(columns).count(c) > 1})
    if missing or extra or twice:
        raise ValueError(f"{table} columns and row values differ: no value for {missing}, no column for {extra}, "
                         f"named twice {twice}")
    source = f"lambda {params}: (" + ", ".join(values[c] for c in columns) + ",)"
    code = compile(source, f"<{table} row>", "eval")
    return eval(code, dict(namespace or {}))  # noqa: S307 - the expressions are the declaring module's constants
