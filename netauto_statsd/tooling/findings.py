"""A problem found by ``netauto-statsd check``: where it is and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    """One problem: file, 1-based line (0 = whole file), what is wrong, the one-line fix."""

    path: str
    line: int
    problem: str
    fix: str


@dataclass
class Report:
    """Findings of one check run, printed for humans."""

    errors: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, path: str, line: int, problem: str, fix: str) -> None:
        """Record a problem that makes the check fail."""
        self.errors.append(Finding(path, line, problem, fix))

    def render(self) -> str:
        """The report as text."""
        lines = [f"{f.path}:{f.line}: {f.problem}\n    fix: {f.fix}" for f in self.errors]
        lines += [f"note: {n}" for n in self.notes]
        verdict = "FAILED" if self.errors else "OK"
        lines.append(f"check {verdict}: {len(self.errors)} problem(s)")
        return "\n".join(lines)
