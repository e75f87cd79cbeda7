"""Read-only ad-hoc SQL for the CLI (``hub sql``) and the HTTP API (``POST /v1/sql``).

``check_query`` refuses anything but one reading statement that calls only allow-listed functions
(``hub.sql.functions``); ``run_readonly`` checks and runs it on a read-only connection with the
row, time and memory limits (HUB_SQL_MAX_ROWS, HUB_SQL_MAX_SECONDS, HUB_SQL_MAX_MEMORY). The rules,
the limits and the data dictionary are in docs/sql.md.
"""

from hub.sql.guard import (QueryFailed, QueryRefused, SqlLimits, check_query, execute_readonly, run_readonly,
                           sql_limits, tokenize)

__all__ = ["QueryFailed", "QueryRefused", "SqlLimits", "check_query", "execute_readonly", "run_readonly",
           "sql_limits", "tokenize"]
