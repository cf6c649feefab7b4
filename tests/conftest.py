"""Shared fixtures: real exporter processes and a clean process-wide emitter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from tests.support import Exporter, require_binary

# For mutation runs (`--hypothesis-profile=mutation`, set in setup.cfg [mutmut]): the same examples
# for every mutant, and no health check or deadline failing a clean run on a loaded machine. Registered
# here, in the root conftest, because mutmut reruns a mutant's covering tests alone: a run of
# integration tests only never loads tests/runtime/core/conftest.py (INTERNALERROR: profile unknown).
settings.register_profile("mutation", derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

EXPORTER_HOW = "run scripts/test, or: go install github.com/prometheus/statsd_exporter@v0.30.0"


@pytest.fixture(scope="session")
def exporter_binary() -> str:
    """Path of statsd_exporter (skip on a laptop without it, fail under CI=true)."""
    return require_binary("statsd_exporter", EXPORTER_HOW)


@pytest.fixture
def exporter(exporter_binary: str, tmp_path: Path) -> Iterator[Exporter]:
    """A fresh statsd_exporter with the repo's mapping.

    At teardown it asserts that the exporter counted no sample error, tag error,
    conflict, unmapped event or dropped event: every test that sends traffic to a
    real exporter therefore also proves the whole path is clean.
    """
    proc = Exporter(exporter_binary, tmp_path)
    try:
        yield proc
        errors = {k: v for k, v in proc.self_errors().items() if v}
        assert not errors, f"statsd_exporter counted errors: {errors}\n{proc.process.log()[-2000:]}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def shared_exporter(exporter_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter for the whole session; its self-error counters are checked at the end.

    A test that sends a malformed or unmapped sample to it therefore fails the
    session (reported as an error at the teardown of the last test using it).
    """
    proc = Exporter(exporter_binary, tmp_path_factory.mktemp("shared-exporter"))
    try:
        yield proc
        errors = {k: v for k, v in proc.self_errors().items() if v}
        assert not errors, f"the shared statsd_exporter counted errors: {errors}\n{proc.log()[-2000:]}"
    finally:
        proc.stop()


@pytest.fixture
def emitter_for():  # type: ignore[no-untyped-def]
    """Factory: an Emitter sending to an exporter (strict), installed process-wide; closed after."""
    made: list[Emitter] = []

    def make(target: Exporter, **overrides: object) -> Emitter:
        settings = Settings(host="127.0.0.1", port=target.udp_port, strict=True, **overrides)  # type: ignore[arg-type]
        emitter = Emitter(settings)
        made.append(emitter)
        set_emitter(emitter)
        return emitter

    yield make
    set_emitter(None)
    for emitter in made:
        emitter.close()
