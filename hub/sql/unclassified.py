"""``python -m hub.sql.unclassified``: the engine's functions and table functions that
``hub.sql.functions`` neither allows nor refuses (after an engine upgrade: review each, then list it
as allowed or refused with its reason). Exits 1 when there are any."""

from __future__ import annotations

from hub.sql.functions import unclassified


def main() -> int:
    """Print the engine's functions and table functions that are not classified yet."""
    import chdb

    connection = chdb.connect(":memory:")
    try:
        functions = connection.query("SELECT name FROM system.functions", "TSV").bytes().decode().split()
        tables = connection.query("SELECT name FROM system.table_functions", "TSV").bytes().decode().split()
    finally:
        connection.close()
    new_functions, new_tables = unclassified(functions, tables)
    for name in new_functions:
        print(f"function {name}")
    for name in new_tables:
        print(f"table function {name}")
    return 1 if new_functions or new_tables else 0


if __name__ == "__main__":
    raise SystemExit(main())
