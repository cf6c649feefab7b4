"""Edits of a copy of the repo mapping, as operators make them, for the check tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from netauto_statsd.tooling.cli import main
from tests.support import MAPPING

RUN_BUCKETS = "      buckets: [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]"
OUTPUT_BUCKETS = "      buckets: [256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0]"
DROP_COMMENT = "  # Anything not declared above: drop it (counted in\n"
DROP_RULE = '  - match: "."\n    match_type: regex\n    action: drop\n    name: "dropped"\n'
TEAM_RULE = (
    "  # Team NetOps: their backup tool sends its own counter through this exporter.\n"
    '  - match: "netops.backup.*.done"\n'
    "    match_metric_type: counter\n"
    '    name: "netops_backups_done_total"\n'
    '    help: "Configuration backups done, by device group."\n'
    "    labels:\n"
    '      group: "${1}"\n'
)


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new``: ``count`` times exactly (0 = every occurrence, at least one)."""

    old: str
    new: str
    count: int = 1

    def apply(self, text: str) -> str:
        found = text.count(self.old)
        assert found and (self.count == 0 or found >= self.count), f"edit target not found: {self.old!r}"
        return text.replace(self.old, self.new, self.count if self.count else -1)


def edited(tmp_path: Path, *edits: Edit, source: Path = MAPPING) -> Path:
    """A copy of ``source`` with ``edits`` applied, in ``tmp_path``."""
    text = source.read_text()
    for edit in edits:
        text = edit.apply(text)
    path = tmp_path / "statsd_mapping.yml"
    path.write_text(text)
    return path


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``netauto-statsd check ARGS`` in process; returns (exit code, stdout)."""
    capsys.readouterr()
    code = main(["check", *args])
    return code, capsys.readouterr().out


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line starting with ``text`` (after indentation) in ``path``."""
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip().startswith(text):
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{text!r} not in {path}")
