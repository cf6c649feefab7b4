"""``Scope.elapsed()``: seconds since the scope began, from whole nanoseconds, never negative.

Every duration an instrument records (``timed``, ``runner_lifecycle``, the integrations)
is this number. A real wait cannot pin it to the nanosecond, so the start is moved
instead: a scope begun 4e18 ns ago is exactly 4e9 s old (plus the test's own run time),
and one whose start lies ahead of the clock is 0, not a negative duration.
"""

from __future__ import annotations

import time

from netauto_statsd.scopes import Scope


def test_elapsed_is_the_nanoseconds_since_the_start_divided_by_a_billion() -> None:
    """Begun 4e18 ns ago: between 4e9 s and what the clock says after the call (a 1e-9 error is 4 s here)."""
    scope = Scope({})
    scope.started_ns = time.perf_counter_ns() - 4 * 10**18
    before_ns = time.perf_counter_ns()
    elapsed = scope.elapsed()
    after_ns = time.perf_counter_ns()
    assert (before_ns - scope.started_ns) / 1e9 <= elapsed <= (after_ns - scope.started_ns) / 1e9
    assert 4e9 <= elapsed < 4e9 + 60


def test_a_start_ahead_of_the_clock_is_zero_seconds_never_negative() -> None:
    scope = Scope({"site": "par1"})
    scope.started_ns = time.perf_counter_ns() + 10**15
    assert scope.elapsed() == 0.0


def test_a_fresh_scope_is_a_few_nanoseconds_old_and_grows() -> None:
    scope = Scope({})
    first = scope.elapsed()
    assert 0 <= first < 60
    deadline = time.monotonic() + 5
    while scope.elapsed() == first:
        assert time.monotonic() < deadline, "elapsed() never moved"
    assert scope.elapsed() > first
