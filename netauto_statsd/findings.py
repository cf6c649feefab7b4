"""A problem found by ``netauto-statsd check``: where it is and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One problem: file, 1-based line (0 = whole file), what is wrong, the one-line fix."""

    path: str
    line: int
    problem: str
    fix: str
