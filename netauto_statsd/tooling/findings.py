"""A problem found by ``netauto-statsd check``: where it is, how to fix it, and how much it matters.

Errors fail the check; warnings are printed and fail only with ``--strict``; a
skipped proof makes the verdict "INCOMPLETE" (exit 3) unless the skip was asked
for with ``--offline``. Each finding is recorded once, however many checks see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

#: Exit codes of ``check``.
EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE, EXIT_INCOMPLETE = 0, 1, 2, 3


@dataclass(frozen=True)
class Finding:
    """One problem: file, 1-based line (0 = whole file), what is wrong, the one-line fix."""

    path: str
    line: int
    problem: str
    fix: str
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line: [warning: ]problem`` and the fix on the next line."""
        tag = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {tag}{self.problem}\n    fix: {self.fix}"


@dataclass
class Report:
    """Findings of one check run, printed for humans."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        """Record ``finding`` unless the same one is already recorded."""
        bucket = self.errors if finding.severity == "error" else self.warnings
        if finding not in bucket:
            bucket.append(finding)

    def error(self, path: str, line: int, problem: str, fix: str) -> None:
        """Record a problem that makes the check fail."""
        self.add(Finding(path, line, problem, fix))

    def warn(self, path: str, line: int, problem: str, fix: str) -> None:
        """Record a problem that is printed, and fails only under ``--strict``."""
        self.add(Finding(path, line, problem, fix, "warning"))

    def skip(self, reason: str) -> None:
        """Record a proof that did not run (the verdict cannot be OK unless the skip was intended)."""
        if reason not in self.skipped:
            self.skipped.append(reason)

    def exit_code(self, strict: bool = False, offline: bool = False) -> int:
        """0 ok, 1 failed (errors, or warnings under ``strict``), 3 incomplete (a proof skipped, not ``offline``)."""
        if self.errors or (strict and self.warnings):
            return EXIT_FAILED
        if self.skipped and not offline:
            return EXIT_INCOMPLETE
        return EXIT_OK

    def render(self, strict: bool = False, offline: bool = False) -> str:
        """The report as text, ending with the verdict line."""
        lines = [f.render() for f in self.errors + self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"skipped: {s}" for s in self.skipped]
        code = self.exit_code(strict, offline)
        counts = f"{len(self.errors)} problem(s), {len(self.warnings)} warning(s)"
        if code == EXIT_FAILED:
            lines.append(f"check FAILED: {counts}")
        elif code == EXIT_INCOMPLETE:
            lines.append(
                f"check INCOMPLETE: {counts}, {len(self.skipped)} proof(s) skipped "
                "(fix the reason above, or pass --offline if the skip is intended)"
            )
        else:
            done = " (offline: skipped proofs above were intended)" if self.skipped else ""
            lines.append(f"check OK: {counts}{done}")
        return "\n".join(lines)
