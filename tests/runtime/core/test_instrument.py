"""Exceptions, cancellation and timeouts through every form of every helper.

Forms: sync decorator, async decorator, ``with`` and ``async with``; helpers:
``runner_lifecycle``, ``timed`` and ``counted``. For each outcome we check the
status tag, that the caller gets the very exception object raised (traceback
intact), ``runner.error`` tagged with the class, ``current_run().add_bytes``, and
that concurrent calls (asyncio.gather, threads) never share a scope - including
one helper object shared by all of them.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from netauto_statsd import counted, current_run, runner_lifecycle, timed
from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter
from netauto_statsd.scopes import Instrument
from netauto_statsd.testing import Recorder, recording

RUN = {"site": "par1", "protocol": "ssh"}
FORMS = ["sync_decorator", "async_decorator", "with", "async_with"]


class DeviceRefusedError(Exception):
    """An application error with its own class name."""


def boom(exc: BaseException) -> None:
    """Raise ``exc`` from a named frame the traceback must keep."""
    raise exc


async def run_in_form(form: str, helper: Instrument, body: Callable[[], Any]) -> Any:
    """Run ``body`` under ``helper`` used in ``form``; return its result or raise its exception."""
    if form == "sync_decorator":

        @helper
        def sync_call() -> Any:
            return body()

        return sync_call()
    if form == "async_decorator":

        @helper
        async def async_call() -> Any:
            await asyncio.sleep(0)  # a real suspension point inside the scope
            return body()

        return await async_call()
    if form == "with":
        with helper:
            return body()
    async with helper:
        await asyncio.sleep(0)
        return body()


OUTCOMES: list[tuple[str, Callable[[], BaseException] | None]] = [
    ("ok", None),
    ("error", lambda: DeviceRefusedError("device said no")),
    ("timeout", lambda: TimeoutError("device too slow")),
    ("cancelled", asyncio.CancelledError),
    ("cancelled", KeyboardInterrupt),
]


async def outcome_of(form: str, helper: Instrument, make_exc: Callable[[], BaseException] | None) -> None:
    """Run a body that adds 4446 bytes then raises ``make_exc()`` (if any); check propagation."""
    raised = make_exc() if make_exc else None

    def body() -> str:
        current_run().add_bytes(4000)
        current_run().add_bytes(446)
        if raised is not None:
            boom(raised)
        return "output"

    if raised is None:
        assert await run_in_form(form, helper, body) == "output"
        return
    with pytest.raises(type(raised)) as info:
        await run_in_form(form, helper, body)
    assert info.value is raised, "the caller must get the very exception object raised"
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "boom" in frames and "body" in frames, frames


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("status", "make_exc"), OUTCOMES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(OUTCOMES)])
async def test_runner_lifecycle_every_form_every_outcome(
    statsd_recorder: Recorder, form: str, status: str, make_exc: Callable[[], BaseException] | None
) -> None:
    await outcome_of(form, runner_lifecycle(RUN), make_exc)

    assert statsd_recorder.total("runner.start", **RUN) == 1
    assert statsd_recorder.total("runner.stop", **RUN) == 1
    assert statsd_recorder.total("runner.stop", status=status, **RUN) == 1
    (duration,) = statsd_recorder.values("runner.duration", status=status, **RUN)
    assert duration >= 0  # seconds as a float; its size is not asserted (no timing in tests)
    assert statsd_recorder.values("runner.bytes", status=status, **RUN) == [4446]
    if status == "error":
        assert statsd_recorder.total("runner.error", error="DeviceRefusedError", **RUN) == 1
    else:
        statsd_recorder.assert_not_emitted("runner.error")
    assert current_run().bytes == 0, "no run may leak out of its block"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("status", "make_exc"), OUTCOMES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(OUTCOMES)])
async def test_timed_and_counted_every_form_every_outcome(
    statsd_recorder: Recorder, form: str, status: str, make_exc: Callable[[], BaseException] | None
) -> None:
    # status-tagged metrics get the status; others are sent with the given tags only
    await outcome_of(form, timed("runner.duration", RUN), make_exc)
    await outcome_of(form, counted("runner.stop", RUN), make_exc)
    await outcome_of(form, timed("rq.job.wait", {"queue": "default", "func": "f"}), make_exc)
    await outcome_of(form, counted("run.created", RUN), make_exc)

    (duration,) = statsd_recorder.values("runner.duration", status=status, **RUN)
    assert duration >= 0  # seconds as a float; its size is not asserted (no timing in tests)
    assert statsd_recorder.total("runner.stop", status=status, **RUN) == 1
    assert statsd_recorder.count("rq.job.wait", queue="default", func="f") == 1
    assert statsd_recorder.total("run.created", **RUN) == 1
    assert statsd_recorder.names() == {"runner.duration", "runner.stop", "rq.job.wait", "run.created"}


# ------------------------------------------------------- real asyncio timeouts
@pytest.mark.parametrize("form", ["async_decorator", "async_with"])
async def test_asyncio_timeout_inside_the_run_is_status_timeout(statsd_recorder: Recorder, form: str) -> None:
    never = asyncio.Event()

    async def slow_device() -> None:
        current_run().add_bytes(10)
        async with asyncio.timeout(0.01):
            await never.wait()

    with pytest.raises(TimeoutError):
        if form == "async_decorator":
            await runner_lifecycle(RUN)(slow_device)()
        else:
            async with runner_lifecycle(RUN):
                await slow_device()
    assert statsd_recorder.total("runner.stop", status="timeout", **RUN) == 1
    assert statsd_recorder.values("runner.bytes", status="timeout", **RUN) == [10]


@pytest.mark.parametrize("form", ["async_decorator", "async_with"])
async def test_task_cancellation_is_status_cancelled(statsd_recorder: Recorder, form: str) -> None:
    entered, never = asyncio.Event(), asyncio.Event()

    @runner_lifecycle(RUN)
    async def decorated() -> None:
        entered.set()
        await never.wait()

    async def with_block() -> None:
        async with runner_lifecycle(RUN):
            entered.set()
            await never.wait()

    task = asyncio.create_task(decorated() if form == "async_decorator" else with_block())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert statsd_recorder.total("runner.stop", status="cancelled", **RUN) == 1
    statsd_recorder.assert_not_emitted("runner.error")


# ----------------------------------------------------------------- concurrency
async def test_concurrent_decorated_calls_share_nothing(statsd_recorder: Recorder) -> None:
    gate = asyncio.Event()

    @runner_lifecycle(lambda site, size: {"site": site, "protocol": "ssh"})
    async def run(site: str, size: int) -> int:
        await gate.wait()  # every call is inside its scope at the same time
        current_run().add_bytes(size)
        await asyncio.sleep(0)
        if size % 3 == 0:
            raise DeviceRefusedError(site)
        return size

    calls = [asyncio.create_task(run(f"site{i}", i)) for i in range(60)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    for i, result in enumerate(results):
        status = "error" if i % 3 == 0 else "ok"
        assert (isinstance(result, DeviceRefusedError) and result.args == (f"site{i}",)) or result == i
        assert statsd_recorder.values("runner.bytes", site=f"site{i}") == [i]
        assert statsd_recorder.total("runner.stop", site=f"site{i}", status=status) == 1
    assert statsd_recorder.total("runner.error", error="DeviceRefusedError") == 20


async def test_one_shared_async_with_helper_gives_each_task_its_own_scope(statsd_recorder: Recorder) -> None:
    shared = runner_lifecycle(RUN)
    gate = asyncio.Event()

    async def run(size: int) -> int:
        async with shared as scope:
            await gate.wait()  # all 40 blocks are open at once
            assert current_run() is scope
            current_run().add_bytes(size)
            if size % 2:
                raise DeviceRefusedError(size)
        return size

    calls = [asyncio.create_task(run(i)) for i in range(40)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert [r for r in results if not isinstance(r, int | DeviceRefusedError)] == []
    ok = sorted(statsd_recorder.values("runner.bytes", status="ok"))
    failed = sorted(statsd_recorder.values("runner.bytes", status="error"))
    assert ok == list(range(0, 40, 2))
    assert failed == list(range(1, 40, 2))


def test_one_shared_with_helper_across_threads(statsd_recorder: Recorder) -> None:
    shared = runner_lifecycle(RUN)
    barrier = threading.Barrier(8, timeout=10)

    def run(size: int) -> None:
        with shared:
            barrier.wait()  # all 8 blocks are open at once
            current_run().add_bytes(size)
            if size % 2:
                raise DeviceRefusedError(size)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(run, i) for i in range(8)]
    errors = [f.exception() for f in futures]
    assert [type(e) for e in errors] == [type(None), DeviceRefusedError] * 4
    assert sorted(statsd_recorder.values("runner.bytes", status="ok")) == [0, 2, 4, 6]
    assert sorted(statsd_recorder.values("runner.bytes", status="error")) == [1, 3, 5, 7]


async def test_nested_runs_each_count_their_own_bytes(statsd_recorder: Recorder) -> None:
    async with runner_lifecycle({"site": "outer", "protocol": "ssh"}):
        current_run().add_bytes(1)
        with runner_lifecycle({"site": "inner", "protocol": "ssh"}):
            current_run().add_bytes(10)
        current_run().add_bytes(100)
    assert statsd_recorder.values("runner.bytes", site="outer") == [101]
    assert statsd_recorder.values("runner.bytes", site="inner") == [10]


# ------------------------------------------------- metrics never break the app
def test_current_run_outside_a_runner_is_a_harmless_no_op(statsd_recorder: Recorder) -> None:
    current_run().add_bytes(5)
    assert statsd_recorder.samples == []


async def test_metric_failures_never_reach_the_caller_in_production_mode() -> None:
    def broken_tags(*args: object) -> dict[str, object]:
        raise RuntimeError("tag function bug")

    with recording(strict=False) as recorder:
        assert runner_lifecycle(broken_tags)(lambda: "result")() == "result"
        assert await runner_lifecycle(RUN)(asyncio.sleep)(0, "async result") == "async result"
        with timed("not.in.catalog"):
            pass
        async with counted("runner.stop", {"site": "par1", "bogus": 1}):
            pass
        stats = get_emitter().stats()
    assert stats["rejected"] == 2  # the undeclared metric and the undeclared tag
    # missing tags were filled with 'other', never raised
    assert recorder.total("runner.stop", site="other", protocol="other", status="ok") == 1


def test_strict_mode_surfaces_catalog_errors_from_helpers(statsd_recorder: Recorder) -> None:
    with pytest.raises(CatalogError, match="not in the catalog"), timed("not.in.catalog"):
        pass
    with pytest.raises(CatalogError, match="needs tag 'site'"):
        runner_lifecycle({"protocol": "ssh"})(lambda: None)()
