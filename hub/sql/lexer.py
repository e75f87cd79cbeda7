"""ClickHouse's SQL tokens, read once for every part of the hub that reads SQL text.

The ad-hoc SQL guard (``hub.sql.guard``) checks the tokens of a query, the store server
(``hub.storage.server``) refuses statements by them, and the migration runner
(``hub.storage.migrations``) splits a migration file into statements at the ``;`` tokens, so a
``;`` inside a string, a quoted name or a comment never ends a statement.

``tokenize`` reads the text the way ClickHouse does: strings with backslash and doubled-quote
escapes, quoted names (``"..."``, backticks), ``--``/``#`` and nested ``/* */`` comments (a
comment separates tokens, so ``DR/**/OP`` is ``DR OP``), numbers and punctuation. What it cannot
read unambiguously (an unterminated string or comment, a NUL, a heredoc, a character outside
ASCII where a look-alike could hide a keyword) is refused with a one-line reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.errors import UserError


class QueryRefused(UserError):
    """The statement is refused (text the lexer cannot read unambiguously, or a rule of the SQL
    guard); ``rule`` names the rule, the message says why."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"query refused: {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Token:
    kind: str      # word, name (quoted identifier), string, number, punct
    text: str      # exactly as written
    value: str     # word: upper-case; name: unquoted; others: text
    spaced: bool   # whitespace or a comment came before it
    pos: int


_WHITESPACE = " \t\n\r\f\v"
_PUNCT = set("()[]{},;.:+-*/%=<>!?|^&~")
_WORD_START = re.compile(r"[A-Za-z_]")
_WORD = re.compile(r"[A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f_]+|0[bB][01_]+|[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)"
                     r"(?:[eE][+-]?[0-9_]+)?[A-Za-z0-9_]*")


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def tokenize(sql: str) -> list[Token]:
    """ClickHouse's tokens, comments dropped; refuses what it cannot read unambiguously."""
    tokens: list[Token] = []
    i, n, spaced = 0, len(sql), False
    if "\x00" in sql:
        raise QueryRefused("character", "the query contains a NUL character")
    while i < n:
        ch = sql[i]
        if ch in _WHITESPACE:
            i += 1
            spaced = True
            continue
        if sql.startswith("--", i) or ch == "#":
            end = min([p for p in (sql.find("\n", i), sql.find("\r", i)) if p != -1] or [n])
            i, spaced = end, True
            continue
        if sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise QueryRefused("unterminated", f"a /* comment opened at character {i + 1} is never closed")
            i, spaced = j, True
            continue
        if ch in "'\"`":
            j = i + 1
            while True:
                if j >= n:
                    what = "string" if ch == "'" else "quoted name"
                    raise QueryRefused("unterminated", f"a {what} opened at character {i + 1} is never closed")
                c = sql[j]
                if c == "\\":
                    j += 2
                    continue
                if c == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote: an escaped quote
                        j += 2
                        continue
                    break
                j += 1
            text = sql[i:j + 1]
            if ch == "'":
                tokens.append(Token("string", text, text, spaced, i))
            else:
                inner = text[1:-1].replace(ch * 2, ch)
                inner = re.sub(r"\\(.)", r"\1", inner, flags=re.S)
                tokens.append(Token("name", text, inner, spaced, i))
            i, spaced = j + 1, False
            continue
        if _WORD_START.match(ch):
            m = _WORD.match(sql, i + 1)  # matches, if only the empty string
            end = m.end() if m else i + 1
            text = sql[i:end]
            tokens.append(Token("word", text, text.upper(), spaced, i))
            i, spaced = end, False
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()
                            and not (tokens and not spaced and tokens[-1].kind in ("word", "name"))):
            m = _NUMBER.match(sql, i)
            if m and m.end() > i:
                tokens.append(Token("number", m.group(), m.group(), spaced, i))
                i, spaced = m.end(), False
                continue
        if ch in _PUNCT:
            tokens.append(Token("punct", ch, ch, spaced, i))
            i, spaced = i + 1, False
            continue
        if ch == "$":
            raise QueryRefused("character", f"'$' at character {i + 1}: heredoc strings ($$...$$) are not "
                                       "accepted, write '...' instead")
        if ord(ch) > 127:
            raise QueryRefused("character", f"non-ASCII character {_char_name(ch)} at character {i + 1} outside a "
                                       "string or quoted name (look-alike letters and invisible spaces are not "
                                       "accepted there)")
        raise QueryRefused("character", f"unexpected character {ch!r} ({_char_name(ch)}) at character {i + 1}")
    return tokens


def split_statements(sql: str) -> list[str]:
    """The statements of a text, split at its ``;`` tokens (never at a ``;`` in a string, a quoted
    name or a comment); each is the original text from its first token to its last, so comments
    before and after a statement are left out and those inside it kept. Empty statements are dropped."""
    statements: list[str] = []
    first: Token | None = None
    last: Token | None = None
    for t in tokenize(sql):
        if t.kind == "punct" and t.text == ";":
            if first is not None and last is not None:
                statements.append(sql[first.pos:last.pos + len(last.text)])
            first = last = None
            continue
        first = first or t
        last = t
    if first is not None and last is not None:
        statements.append(sql[first.pos:last.pos + len(last.text)])
    return statements
