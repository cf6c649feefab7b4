"""The resolution cache's promises, and one context id per context under concurrent first calls.

``Resolver`` documents that a repeated call costs one dict lookup (the same resolution
comes back), that only small all-text calls are kept (a call over ``CACHE_KEY_CHARS``
characters is resolved every time, never kept) and that the cache is bounded by
``CACHE_LIMIT`` entries: those bounds are what keeps the memory of a process that sees
many distinct tag values flat. Each context must get exactly one id, even when threads
make its first call at the same moment: a second id would send a gauge twice per flush,
one of the two values stale for good.
"""

from __future__ import annotations

import threading

import pytest

from netauto_statsd.catalog import client, throughput
from netauto_statsd.config import Settings
from netauto_statsd.emitter.resolve import CACHE_KEY_CHARS, CACHE_LIMIT, COUNTER, Resolved, Resolver

RUN = {"site": "par1", "protocol": "ssh"}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(Settings(strict=False))


def _resolved(found: object) -> Resolved:
    assert isinstance(found, Resolved), getattr(found, "error", found)
    return found


def test_a_repeated_call_is_answered_from_the_cache(resolver: Resolver) -> None:
    """With tags, without tags (a tagless counter), by name or by declared object: one resolution, kept."""
    first = _resolved(resolver.lookup("run.created", None, COUNTER, RUN))
    assert resolver.lookup("run.created", None, COUNTER, dict(RUN)) is first
    assert resolver.lookup("run.created", throughput.RUNS_CREATED, COUNTER, RUN) is first
    tagless = _resolved(resolver.lookup("client.send_failures", None, COUNTER, None))
    assert resolver.lookup("client.send_failures", None, COUNTER, None) is tagless
    assert resolver.lookup("client.send_failures", client.SEND_FAILURES, COUNTER, {}) is tagless
    assert first.labels == RUN and tagless.labels == {}
    assert len(resolver.cache) == 2


def test_a_call_of_exactly_the_cache_key_limit_is_kept_and_one_more_character_is_not(resolver: Resolver) -> None:
    name = "run.device"
    room = CACHE_KEY_CHARS - len(name) - len("device")
    at_limit = {"device": "d" * room}
    over = {"device": "d" * (room + 1)}
    kept = _resolved(resolver.lookup(name, None, COUNTER, at_limit))
    assert resolver.lookup(name, None, COUNTER, at_limit) is kept
    once = _resolved(resolver.lookup(name, None, COUNTER, over))
    again = _resolved(resolver.lookup(name, None, COUNTER, over))
    assert again is not once and again.cid == once.cid  # resolved again, to the same context
    assert len(resolver.cache) == 1


def test_the_cache_never_holds_more_than_its_limit(resolver: Resolver) -> None:
    """Distinct device values past ``CACHE_LIMIT``: the cache is emptied, then fills again."""
    for i in range(CACHE_LIMIT):
        resolver.lookup("run.device", None, COUNTER, {"device": f"d{i}"})
    assert len(resolver.cache) == CACHE_LIMIT
    resolver.lookup("run.device", None, COUNTER, {"device": "one-more"})
    assert len(resolver.cache) == 1
    resolver.lookup("run.device", None, COUNTER, {"device": "d0"})
    assert len(resolver.cache) == 2


class _BothMiss(dict[tuple[str, tuple[tuple[str, str], ...]], int]):
    """The resolver's id table, holding each thread's first read until the other thread has read too.

    So two threads both miss the unlocked read of a new context, the interleaving a busy
    process meets now and then; the rest (the lock, the second read) is the resolver's own.
    """

    def __init__(self) -> None:
        super().__init__()
        self.both_read = threading.Barrier(2, timeout=2)
        self.reads = threading.local()

    def get(self, key: tuple[str, tuple[tuple[str, str], ...]], default: int | None = None) -> int | None:  # type: ignore[override]
        first = not getattr(self.reads, "done", False)
        self.reads.done = True
        found = super().get(key, default)
        if first:
            try:
                self.both_read.wait()
            except threading.BrokenBarrierError:  # only one thread read without the lock
                pass
        return found


def test_two_threads_making_the_first_call_of_a_context_at_once_get_one_id(resolver: Resolver) -> None:
    resolver._ids = _BothMiss()
    pairs = (("device", "edge-1"),)
    got: list[int] = []
    workers = [
        threading.Thread(target=lambda: got.append(resolver.context_id(throughput.DEVICE_RUNS, pairs)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert got == [0, 0]
    assert resolver.contexts == [(throughput.DEVICE_RUNS, pairs)]
