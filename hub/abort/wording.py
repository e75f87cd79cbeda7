"""How alerts read: numbers as people write them, and a resolved alert saying the value went back.

A firing alert reads ``error_rate 0.2412 > 0.2``; a resolved one ``error_rate 0.04817 <= 0.05
(resolved)``: the comparison that holds now, not the one that breached. Numbers never come out in
exponent notation (``1140``, not ``1.14e+03``).
"""

from __future__ import annotations

import math

#: The comparison that holds when a breach of ``comparison`` is over.
BACK = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def plain(value) -> str:
    """A number as a person writes it: integers whole, others with four significant digits at most
    and no exponent (``1140``, ``0.04817``, ``13.4``); ``None`` is "no value"."""
    if value is None:
        return "no value"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, 3 - magnitude)
    text = f"{round(value, decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def comparison_now(comparison: str, status: str) -> str:
    """The comparison to print: the rule's while firing, its opposite once resolved."""
    return BACK.get(comparison, comparison) if status == "resolved" else comparison


def value_against_threshold(measurement: str, value, comparison: str, threshold, status: str) -> str:
    """``count 17 < 20 (resolved)`` or ``count 23 >= 20``."""
    text = f"{measurement} {plain(value)} {comparison_now(comparison, status)} {plain(threshold)}"
    return text + " (resolved)" if status == "resolved" else text


def contributor(item: dict) -> str:
    """One top contributor: ``/checkout (0.6)``, ``/orders (1140)``."""
    return f"{item.get('route')} ({plain(item.get('value'))})"
