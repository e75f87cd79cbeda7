"""The expansion of a panel's raw SQL as Grafana and ``grafana-clickhouse-datasource`` do it.

Three steps, in the plugin's order:

1. ``$__conditionalAll(condition, $var)`` (plugin frontend, before variables are interpolated):
   the condition, or ``1=1`` when the variable's current value is All (``$__all``) or empty.
2. Grafana's template interpolation: ``$var``, ``${var}``, ``${var:format}``, ``[[var]]``; a
   multi-value or All selection becomes every value (All without ``allValue`` = every option);
   formats ``singlequote``, ``doublequote``, ``csv``, ``raw``, ``pipe``, ``sqlstring``.
3. The plugin backend's macros (``pkg/macros/macros.go`` over ``sqlds``): ``$__timeFilter(c)`` ->
   ``c >= toDateTime(from) AND c <= toDateTime(to)``, ``$__timeFilter_ms(c)`` with
   ``fromUnixTimestamp64Milli``, ``$__fromTime``/``$__toTime`` (``_ms``), ``$__dateFilter``,
   ``$__dateTimeFilter``/``$__dt``, ``$__timeInterval(c)`` -> ``toStartOfInterval(toDateTime(c),
   INTERVAL n second)``, ``$__timeInterval_ms``, ``$__interval_s`` (at least 1).

Used by the tests to run every generated query on the embedded engine.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

ALL = "$__all"


@dataclass
class Variable:
    """A template variable's state: its selected values (or ``ALL``) and its options."""

    current: list[str] | str
    options: list[str] = field(default_factory=list)
    all_value: str | None = None

    def values(self) -> list[str]:
        if self.current == ALL or self.current == [ALL]:
            return [self.all_value] if self.all_value is not None else list(self.options)
        return [self.current] if isinstance(self.current, str) else list(self.current)

    def is_all(self) -> bool:
        return self.current in (ALL, [ALL], "", [])


class MacroError(ValueError):
    pass


def _args_at(sql: str, open_index: int) -> tuple[list[str], int]:
    """Arguments of a call whose '(' is at open_index (balanced parentheses, quotes respected)."""
    depth, i, start, args, quote = 0, open_index, open_index + 1, [], None
    while i < len(sql):
        ch = sql[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return [a.strip() for a in args], i + 1
        elif ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
        i += 1
    raise MacroError(f"unbalanced parentheses after {sql[max(0, open_index - 20):open_index + 1]!r}")


def conditional_all(sql: str, variables: dict[str, Variable]) -> str:
    macro = "$__conditionalAll("
    while (at := sql.rfind(macro)) != -1:
        args, end = _args_at(sql, at + len(macro) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        name = args[1].strip().lstrip("$").strip("{}")
        var = variables.get(name)
        phrase = "1=1" if var is None or var.is_all() else args[0]
        sql = sql[:at] + phrase + sql[end:]
    return sql


def _format(values: list[str], fmt: str | None, multi: bool) -> str:
    if fmt in (None, "", "raw"):
        return ",".join(values)
    if fmt == "glob":
        return "{" + ",".join(values) + "}" if multi else values[0]
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    raise MacroError(f"unsupported variable format {fmt!r}")


_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")


def interpolate(sql: str, variables: dict[str, Variable]) -> str:
    def replace(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5)
        var = variables.get(name)
        if var is None:
            return m.group(0)  # not a variable (a macro such as $__timeFilter): left for the backend
        values = var.values()
        if not values:
            return ""
        if fmt is None:
            # The plugin's own formatter: several values become a quoted list, one stays bare.
            return "'" + "','".join(values) + "'" if len(values) > 1 else values[0]
        return _format(values, fmt, len(values) > 1)

    return _VARIABLE.sub(replace, sql)


def _seconds(t: dt.datetime) -> int:
    return int(t.timestamp())


def _millis(t: dt.datetime) -> int:
    return int(round(t.timestamp() * 1000))


def backend_macros(sql: str, time_from: dt.datetime, time_to: dt.datetime, interval_s: float) -> str:
    def dt_s(t):
        return f"toDateTime({_seconds(t)})"

    def dt_ms(t):
        return f"fromUnixTimestamp64Milli({_millis(t)})"

    def date(t):
        return f"toDate('{t.astimezone(dt.timezone.utc).strftime('%Y-%m-%d')}')"

    seconds = max(int(interval_s), 1)
    millis = max(int(interval_s * 1000), 1)

    def one(args, name):
        if len(args) != 1:
            raise MacroError(f"$__{name}: expected 1 argument, received {len(args)}")
        return args[0]

    functions = {
        "timeFilter_ms": lambda a: f"{one(a, 'timeFilter_ms')} >= {dt_ms(time_from)} AND {a[0]} <= {dt_ms(time_to)}",
        "timeFilter": lambda a: f"{one(a, 'timeFilter')} >= {dt_s(time_from)} AND {a[0]} <= {dt_s(time_to)}",
        "dateFilter": lambda a: f"{one(a, 'dateFilter')} >= {date(time_from)} AND {a[0]} <= {date(time_to)}",
        "dateTimeFilter": lambda a: _dt_filter(a, date, dt_s, time_from, time_to),
        "dt": lambda a: _dt_filter(a, date, dt_s, time_from, time_to),
        "timeInterval_ms": lambda a: f"toStartOfInterval(toDateTime64({one(a, 'timeInterval_ms')}, 3), INTERVAL {millis} millisecond)",
        "timeInterval": lambda a: f"toStartOfInterval(toDateTime({one(a, 'timeInterval')}), INTERVAL {seconds} second)",
        "fromTime_ms": lambda a: dt_ms(time_from),
        "toTime_ms": lambda a: dt_ms(time_to),
        "fromTime": lambda a: dt_s(time_from),
        "toTime": lambda a: dt_s(time_to),
        "interval_s": lambda a: str(seconds),
    }
    pattern = re.compile(r"\$__(" + "|".join(sorted(functions, key=len, reverse=True)) + r")(?![A-Za-z0-9_])(\(([^()]*)\))?")

    def replace(m: re.Match) -> str:
        args = [a.strip() for a in m.group(3).split(",")] if m.group(2) is not None else []
        return functions[m.group(1)](args)

    out = pattern.sub(replace, sql)
    if re.search(r"\$__(timeFilter|timeInterval|dateFilter|dateTimeFilter|dt)\w*\(", out):
        raise MacroError("a macro argument contains parentheses, which the plugin backend does not read")
    return out


def _dt_filter(args, date, dt_s, time_from, time_to) -> str:
    if len(args) != 2:
        raise MacroError(f"$__dateTimeFilter: expected 2 arguments, received {len(args)}")
    d, t = args
    return (f"({d} >= {date(time_from)} AND {d} <= {date(time_to)}) AND "
            f"({t} >= {dt_s(time_from)} AND {t} <= {dt_s(time_to)})")


def expand(sql: str, *, time_from: dt.datetime, time_to: dt.datetime, interval_s: float = 5,
           variables: dict[str, Variable] | None = None) -> str:
    """``sql`` as the plugin sends it to ClickHouse for this time range, interval and variables."""
    variables = variables or {}
    sql = conditional_all(sql, variables)
    sql = interpolate(sql, variables)
    return backend_macros(sql, time_from, time_to, interval_s)
