"""Statement classification: ``(operation, table)`` from SQL text, keeping none of the text."""

from __future__ import annotations

import re

__all__ = ["NO_TABLE", "OTHER", "classify_statement"]

#: Tag values for statements that name no table, and for tables outside the declared set.
NO_TABLE, OTHER = "none", "other"
_IDENT = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_NAME = re.compile(rf"{_IDENT}(?:\s*\.\s*{_IDENT})*")
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.S)
_KEYWORD = re.compile(r"[A-Za-z]+")
_DML_AFTER_WITH = re.compile(r"\b(insert|update|delete)\b", re.I)
_TABLE_AFTER = {
    "select": re.compile(rf"\bfrom\s+({_NAME.pattern})", re.I),
    "delete": re.compile(rf"\bfrom\s+({_NAME.pattern})", re.I),
    "insert": re.compile(rf"\binto\s+({_NAME.pattern})", re.I),
    "update": re.compile(rf"\bupdate\s+(?:only\s+)?({_NAME.pattern})", re.I),
}
_OPERATIONS = ("select", "insert", "update", "delete")


def classify_statement(statement: str) -> tuple[str, str]:
    """Return ``(operation, table)`` for SQL text, without keeping any of the text.

    ``operation`` is ``select``, ``insert``, ``update``, ``delete`` or ``other``;
    ``table`` is the unquoted last part of the first table name the statement
    names (``none`` for statements naming none, and for ``other`` operations).
    A heuristic, not a parser: it only has to be right for the statements an
    application sends, and it is bounded either way.

    >>> classify_statement('SELECT runs.id FROM "runs" WHERE runs.id = ?')
    ('select', 'runs')
    >>> classify_statement("WITH x AS (SELECT 1) UPDATE main.devices SET a = 1")
    ('update', 'devices')
    """
    start = _LEADING.match(statement)
    head = _KEYWORD.match(statement, start.end() if start else 0)
    keyword = head.group(0).lower() if head else ""
    body = 0
    if keyword == "with":  # the statement's verb follows its common table expressions
        dml = _DML_AFTER_WITH.search(statement)
        keyword, body = (dml.group(1).lower(), dml.start()) if dml else ("select", 0)
    if keyword not in _OPERATIONS:
        return "other", NO_TABLE
    found = _TABLE_AFTER[keyword].search(statement, body)
    if found is None:
        return keyword, NO_TABLE
    last = re.split(r"\s*\.\s*", found.group(1))[-1]
    return keyword, last.strip('"`[]') or NO_TABLE
