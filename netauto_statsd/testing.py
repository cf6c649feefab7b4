"""An in-memory metric recorder for the application's own tests (no UDP).

The seed validated its Telemetry events with test handlers; this is our
equivalent. With the ``netauto-statsd`` package installed, pytest gets a
``statsd_recorder`` fixture automatically (``pytest11`` entry point)::

    def test_run_is_counted(statsd_recorder):
        create_run(device)
        assert statsd_recorder.total("run.created", site="par1") == 1

Outside pytest, use :func:`recording`::

    with recording() as rec:
        do_work()
    rec.assert_emitted("runner.stop", status="ok")

The recorder runs the emitter in strict mode: an undeclared metric or tag
raises :class:`~netauto_statsd.emitter.CatalogError` in the test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter


@dataclass(frozen=True)
class Sample:
    """One emission as the application made it (tags already normalised)."""

    name: str
    type: str
    value: float
    tags: dict[str, str]
    relative: bool = False


class Recorder:
    """Collects every emission; thread-safe. Query methods filter by a subset of tags."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._lock = threading.Lock()

    def record(self, name: str, type: str, value: float, tags: dict[str, str], relative: bool = False) -> None:
        """Store one emission (called by the emitter)."""
        with self._lock:
            self.samples.append(Sample(name, type, value, tags, relative))

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.samples.clear()

    def find(self, name: str, /, **tags: object) -> list[Sample]:
        """Samples of ``name`` whose tags include every given ``tag=value``."""
        wanted = {k: str(v) for k, v in tags.items()}
        with self._lock:
            return [s for s in self.samples if s.name == name and wanted.items() <= s.tags.items()]

    def values(self, name: str, /, **tags: object) -> list[float]:
        """The recorded values of ``name`` (matching ``tags``), in order."""
        return [s.value for s in self.find(name, **tags)]

    def total(self, name: str, /, **tags: object) -> float:
        """Sum of the recorded values (a counter's total)."""
        return sum(self.values(name, **tags))

    def count(self, name: str, /, **tags: object) -> int:
        """Number of recorded samples (a histogram's observation count)."""
        return len(self.find(name, **tags))

    def gauge(self, name: str, /, **tags: object) -> float | None:
        """Current value of a gauge for the given tags, replaying sets and moves in order."""
        current: float | None = None
        for sample in self.find(name, **tags):
            current = (current or 0) + sample.value if sample.relative else sample.value
        return current

    def names(self) -> set[str]:
        """Every metric name recorded."""
        with self._lock:
            return {s.name for s in self.samples}

    def assert_emitted(self, name: str, /, **tags: object) -> list[Sample]:
        """Fail unless ``name`` was emitted with ``tags``; return the matching samples."""
        found = self.find(name, **tags)
        if not found:
            seen = sorted({tuple(sorted(s.tags.items())) for s in self.samples if s.name == name})
            raise AssertionError(f"{name} {tags} was not emitted; {name} was emitted with: {seen or 'nothing'}")
        return found

    def assert_not_emitted(self, name: str, /, **tags: object) -> None:
        """Fail if ``name`` was emitted with ``tags``."""
        found = self.find(name, **tags)
        if found:
            raise AssertionError(f"{name} {tags} was emitted {len(found)} time(s): {found[:3]}")


@contextmanager
def recording(strict: bool = True) -> Iterator[Recorder]:
    """Install a recording, non-sending emitter as the process-wide one for the block."""
    recorder = Recorder()
    emitter = Emitter(Settings(strict=strict, disabled=True))
    emitter.listener = recorder
    previous = set_emitter(emitter)
    try:
        yield recorder
    finally:
        set_emitter(previous)
