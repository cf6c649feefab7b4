"""What a measured block records, exactly: statuses the caller sets, tags, bytes, durations, refusal messages.

``runner_lifecycle``, ``timed`` and ``counted`` (:mod:`netauto_statsd.instrument`) on the
shared mechanism of :mod:`netauto_statsd.scopes`. The recorder is the emitter with a
listener (strict unless said otherwise); exact values, statuses and texts are asserted.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Iterator

import pytest

from netauto_statsd import (
    catalog,
    chunk_appended,
    counted,
    current_run,
    run_created,
    run_finished,
    runner_lifecycle,
    timed,
)
from netauto_statsd.catalog import CatalogError, Metric, Tag
from netauto_statsd.emitter import get_emitter
from netauto_statsd.scopes import Instrument, Scope
from netauto_statsd.testing import Recorder, recording

RUN = {"site": "par1", "protocol": "ssh"}


# ---------------------------------------------------------------- statuses
def test_a_status_set_in_the_block_replaces_the_outcome(statsd_recorder: Recorder) -> None:
    with runner_lifecycle(RUN) as run:
        run.set_status("timeout")  # a soft timeout: the block itself returns
    with pytest.raises(ValueError), runner_lifecycle({"site": "lon1", "protocol": "ssh"}) as run:
        run.set_status("cancelled")
        raise ValueError("stopped by the operator")

    @runner_lifecycle({"site": "ams1", "protocol": "ssh"})  # the decorator's fast path
    def soft() -> str:
        current_run().set_status("timeout")
        return "partial"

    assert soft() == "partial"
    with timed("runner.duration", {"site": "fra1", "protocol": "ssh"}) as scope:
        scope.set_status("error")

    assert statsd_recorder.total("runner.stop", site="par1", status="timeout") == 1
    assert statsd_recorder.total("runner.stop", site="lon1", status="cancelled") == 1
    assert statsd_recorder.total("runner.stop", site="ams1", status="timeout") == 1
    assert statsd_recorder.count("runner.duration", site="ams1", status="timeout") == 1
    assert statsd_recorder.count("runner.duration", site="fra1", status="error") == 1
    assert statsd_recorder.total("runner.stop", status="ok") == 0
    statsd_recorder.assert_not_emitted("runner.error")  # only a raised error with status error counts there


def test_a_status_the_caller_gives_as_a_tag_is_kept(statsd_recorder: Recorder) -> None:
    with counted("runner.stop", {**RUN, "status": "timeout"}):
        pass
    with timed("runner.duration", {**RUN, "status": "cancelled"}):
        pass
    assert [s.tags["status"] for s in statsd_recorder.find("runner.stop")] == ["timeout"]
    assert [s.tags["status"] for s in statsd_recorder.find("runner.duration")] == ["cancelled"]


@pytest.fixture
def registry_restored() -> Iterator[None]:
    before = dict(catalog.BY_NAME)
    yield
    catalog.BY_NAME.clear()
    catalog.BY_NAME.update(before)


def test_a_timed_or_counted_made_before_its_metric_is_declared_adds_the_status(registry_restored: None) -> None:
    """Before: the name was looked up once, when the helper was made; an app metric declared later
    (its catalog module imported after the decorated module) never got its automatic status:
    strict mode raised "needs tag 'status'", production sent ``status:other``."""
    took = timed("sync.duration", {"kind": "full"})
    jobs = counted("sync.jobs", {"kind": "full"})
    status = Tag("status", ("ok", "error", "timeout", "cancelled"))
    catalog.histogram(
        "sync.duration",
        tags=(Tag("kind"), status),
        unit="seconds",
        help="Sync time.",
        prometheus_name="sync_duration_seconds",
        buckets=(1.0,),
    )
    catalog.counter("sync.jobs", tags=(Tag("kind"), status), help="Syncs.", prometheus_name="sync_jobs_total")
    with recording() as recorder:
        with took, jobs:
            pass
        with pytest.raises(TimeoutError), jobs:
            raise TimeoutError
    assert [(s.tags["kind"], s.tags["status"]) for s in recorder.find("sync.duration")] == [("full", "ok")]
    assert [(s.tags["status"], s.value) for s in recorder.find("sync.jobs")] == [("ok", 1), ("timeout", 1)]
    assert isinstance(took.metric, Metric) and took.metric is catalog.BY_NAME["sync.duration"]


def test_a_name_never_declared_is_refused_at_each_use(statsd_recorder: Recorder) -> None:
    with pytest.raises(CatalogError, match=r"'sync\.never' is not in the catalog"), counted("sync.never", RUN):
        pass
    with recording(strict=False) as recorder:
        with timed("sync.never"), counted("sync.never"):
            pass
        assert get_emitter().stats()["rejected"] == 2
    assert recorder.samples == []


# ----------------------------------------------------------- throughput hooks
def test_throughput_hooks_count_each_call_once(statsd_recorder: Recorder) -> None:
    for size in (100, 250, 4):
        chunk_appended(site="par1", protocol="ssh", size=size)
    run_created(site="par1", protocol="ssh", device="edge-1")
    run_created(site="par1", protocol="ssh")
    run_finished(site="par1", protocol="ssh", total_bytes=354)
    assert statsd_recorder.total("chunk.appended", **RUN) == 3
    assert statsd_recorder.total("chunk.bytes", **RUN) == 354
    assert statsd_recorder.total("run.created", **RUN) == 2
    assert [(s.tags, s.value) for s in statsd_recorder.find("run.device")] == [({"device": "edge-1"}, 1)]
    assert statsd_recorder.values("run.output_bytes", **RUN) == [354]


# ------------------------------------------------------------- scopes
def test_current_run_outside_a_runner_is_an_empty_scope() -> None:
    scope = current_run()
    scope.add_bytes(5)
    assert (scope.tags, scope.bytes, scope.status) == ({}, 0, None)


def test_a_recorded_duration_never_exceeds_the_time_around_the_block(statsd_recorder: Recorder) -> None:
    """Not a timing assertion: the duration is measured inside the interval the test measures around it."""
    before = time.perf_counter()
    with runner_lifecycle(RUN):
        pass
    timed("runner.duration", {**RUN, "status": "ok"})(lambda: None)()
    around = time.perf_counter() - before
    durations = statsd_recorder.values("runner.duration")
    assert len(durations) == 2 and all(0 <= d <= around for d in durations), (durations, around)


def test_add_bytes_accepts_every_finite_size_up_to_the_largest_float(statsd_recorder: Recorder) -> None:
    with runner_lifecycle(RUN):
        current_run().add_bytes(sys.float_info.max)
    assert statsd_recorder.values("runner.bytes") == [sys.float_info.max]


def test_add_bytes_refusals_name_the_value(statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CatalogError) as raised, runner_lifecycle(RUN):
        current_run().add_bytes("abc")  # type: ignore[arg-type]
    assert str(raised.value) == "add_bytes needs a finite number >= 0, got 'abc'"
    with recording(strict=False), caplog.at_level(logging.DEBUG, logger="netauto_statsd"), runner_lifecycle(RUN):
        current_run().add_bytes(-1)
        assert get_emitter().stats()["rejected"] == 1
    assert "netauto_statsd: rejected: add_bytes needs a finite number >= 0, got -1" in caplog.messages


# -------------------------------------------------------------- tag sources
def test_a_tag_function_gets_the_calls_keyword_arguments(statsd_recorder: Recorder) -> None:
    @runner_lifecycle(lambda device, cmd: {"site": device, "protocol": cmd})
    def execute(device: str, cmd: str) -> str:
        return f"{cmd}@{device}"

    assert execute(device="par1", cmd="ssh") == "ssh@par1"
    with runner_lifecycle(lambda: {"site": "lon1", "protocol": "telnet"}):  # a block: called with no arguments
        pass
    assert statsd_recorder.total("runner.stop", site="par1", protocol="ssh", status="ok") == 1
    assert statsd_recorder.total("runner.stop", site="lon1", protocol="telnet", status="ok") == 1


def test_tags_that_are_not_a_mapping_are_named_in_strict_mode_and_logged_in_production(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with recording(), pytest.raises(CatalogError) as raised, runner_lifecycle(["site:par1"]):  # type: ignore[arg-type]
        pass
    assert str(raised.value) == "tags must be a mapping (or a function returning one), got ['site:par1']"
    with recording(strict=False) as recorder, caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        with runner_lifecycle(["site:par1"]):  # type: ignore[arg-type]
            pass
        stats = get_emitter().stats()
    assert "netauto_statsd: tags must be a mapping (or a function returning one), got ['site:par1']" in caplog.messages
    assert stats["rejected"] == 0  # only logged: the samples go out with 'other', counted as missing tags
    assert recorder.total("runner.stop", site="other", protocol="other", status="ok") == 1


def test_a_failing_tag_function_is_named_and_its_message_cut(statsd_recorder: Recorder) -> None:
    def tags_of(device: str) -> dict[str, object]:
        raise KeyError(device)

    with pytest.raises(CatalogError) as raised, runner_lifecycle(functools.partial(tags_of, "edge-1")):
        pass  # a partial has no __qualname__
    assert str(raised.value) == "tag function ? raised KeyError: 'edge-1'"
    long = "x" * 300
    with pytest.raises(CatalogError) as raised:
        runner_lifecycle(tags_of)(lambda device: None)(long)
    expected = f"tag function {tags_of.__qualname__} raised KeyError: '{long}'"
    assert str(raised.value) == expected[:240]


# ------------------------------------------------- failures in begin and end
class _Fragile(Instrument):
    """An instrument whose own code fails where it is told to."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def begin(self, scope: Scope) -> None:
        if self.where == "begin":
            raise RuntimeError("begin broke")

    def end(self, scope: Scope, exc: BaseException | None) -> None:
        if self.where == "end":
            raise RuntimeError("end broke")


@pytest.mark.parametrize("where", ["begin", "end"])
def test_a_failing_begin_or_end_is_counted_and_logged_by_its_name(where: str, caplog: pytest.LogCaptureFixture) -> None:
    with recording(strict=False), caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        assert _Fragile(where)(lambda: "result")() == "result"
        with _Fragile(where):
            pass
        stats = get_emitter().stats()
    assert stats["internal_errors"] == 2
    assert caplog.messages.count(f"netauto_statsd: {where} failed: {where} broke") == 2


# -------------------------------------------------------- blocks left out of order
def test_blocks_exited_out_of_order_each_finish_their_own_scope(statsd_recorder: Recorder) -> None:
    outer = runner_lifecycle({"site": "outer", "protocol": "ssh"})
    middle = runner_lifecycle({"site": "middle", "protocol": "ssh"})
    inner = runner_lifecycle({"site": "inner", "protocol": "ssh"})
    outer.__enter__().add_bytes(1)
    middle.__enter__().add_bytes(10)
    inner.__enter__().add_bytes(100)
    middle.__exit__(None, None, None)  # not the innermost
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)
    for helper in (outer, middle, inner):  # each block was finished once: nothing of it is left to finish
        helper.__exit__(None, None, None)
    for site, size in (("outer", 1), ("middle", 10), ("inner", 100)):
        assert statsd_recorder.total("runner.stop", site=site) == 1, site
        assert statsd_recorder.values("runner.bytes", site=site) == [size], site
    assert current_run().bytes == 0


def test_an_exit_without_its_enter_finishes_nothing_and_says_so(
    statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        runner_lifecycle(RUN).__exit__(None, None, None)
        counted("run.created", RUN).__exit__(None, None, None)
    assert statsd_recorder.samples == []
    assert caplog.messages == [
        "netauto_statsd: runner_lifecycle exited without a matching enter",
        "netauto_statsd: counted exited without a matching enter",
    ]
