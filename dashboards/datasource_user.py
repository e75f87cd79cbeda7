"""A ClickHouse user for Grafana's datasource that can only read the hub's database.

Not a migration: run it once per server, on demand (``hub dashboards datasource-user``).

- role ``<user>_role``: ``SELECT`` on ``<db>.*`` only;
- settings profile ``<user>_profile``: ``readonly = 1`` (no writes, no setting changes) except
  ``max_execution_time``, which the plugin's client sets on every query and which must therefore be
  ``CHANGEABLE_IN_READONLY`` (the plugin's documented setup for a read-only user);
- user ``<user>`` with that profile and that role as its only (default) role.

The embedded engine (chDB) has no user directories: it refuses ``CREATE ROLE``/``CREATE USER``
(no access management), so there the statements can only be checked for syntax, and ``readonly = 1``
checked as a query setting. In the embedded mode none of this is needed: the worker's store endpoint
(``docs/grafana.md``) knows this user itself (``HUB_GRAFANA_CLICKHOUSE_USER``/``_PASSWORD``) and runs
its statements with ``readonly = 1``.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{what} {name!r}: expected letters, digits and underscores, starting with a letter")
    return name


def _password_literal(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def datasource_user_sql(database: str, user: str = "hub_grafana", password: str | None = None,
                        max_execution_time: int = 60) -> list[str]:
    """The statements, in order. Without a password the user has none set (``IDENTIFIED`` left for
    the operator): the printed SQL then says so instead of inventing one."""
    db, user = _check(database, "database"), _check(user, "user")
    role, profile = f"{user}_role", f"{user}_profile"
    ident = (f" IDENTIFIED WITH sha256_password BY {_password_literal(password)}" if password
             else " IDENTIFIED WITH sha256_password BY 'change-me'")
    return [
        f"CREATE ROLE IF NOT EXISTS {role}",
        f"GRANT SELECT ON {db}.* TO {role}",
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {profile} SETTINGS readonly = 1, "
        f"max_execution_time = {int(max_execution_time)} CHANGEABLE_IN_READONLY",
        f"CREATE USER IF NOT EXISTS {user}{ident} SETTINGS PROFILE '{profile}'",
        f"GRANT {role} TO {user}",
        f"SET DEFAULT ROLE {role} TO {user}",
    ]


def redacted(statements: list[str]) -> list[str]:
    return [re.sub(r"BY '(?:[^'\\]|\\.)*'", "BY '***'", s) for s in statements]
