"""The background publisher: figures gathered on hot paths reach the emitter within 0.25 s, no flush needed.

An integration's pending figures (``Pending``) reach the emitter three ways:
at once while a test recorder is installed, from the publisher's daemon
thread shortly after they were asked for, or from the emitter's flush hook.
These tests watch them on a real emitter whose own flush never runs during
the test (a 60 s flush interval).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.catalog import CatalogError
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from netauto_statsd.integrations._publisher import publish_pending, request_publish
from netauto_statsd.testing import recording
from tests.runtime.integrations.test_supported_versions import wait_for_child
from tests.support import free_port, wait_until

TAGS = {"pool": "bg", "operation": "select", "table": "runs"}


class Figures:
    """A hot path's pending figures: ``n`` queries counted, handed over on publish."""

    def __init__(self, n: int = 1, fail_with: Exception | None = None) -> None:
        self.n = n
        self.fail_with = fail_with
        self.published: list[threading.Thread] = []

    def publish(self) -> None:
        self.published.append(threading.current_thread())
        if self.fail_with is not None:
            raise self.fail_with
        if self.n:
            get_emitter().increment("db.query", self.n, tags=TAGS)
            self.n = 0


@pytest.fixture
def emitter() -> Iterator[Emitter]:
    """A real emitter that never flushes during a test, sending nowhere (the publisher is what is watched)."""
    made = Emitter(Settings(host="127.0.0.1", port=free_port(socket.SOCK_DGRAM), flush_interval=60))
    previous = set_emitter(made)
    yield made
    set_emitter(previous)
    made.close()


class Blocking(Figures):
    """Figures whose publish holds the publisher thread until released."""

    def __init__(self) -> None:
        super().__init__(0)
        self.entered, self.release = threading.Event(), threading.Event()

    def publish(self) -> None:
        super().publish()
        self.entered.set()
        self.release.wait(30)


@pytest.fixture
def busy_publisher(emitter: Emitter) -> Iterator[None]:
    """The publisher thread held inside a publish: what is asked for meanwhile stays pending for the test."""
    blocker = Blocking()
    request_publish(blocker)
    assert blocker.entered.wait(10)
    yield
    blocker.release.set()


def published_by_the_publisher_thread(figures: Figures, what: str) -> threading.Thread:
    """Wait until the publisher thread itself published ``figures`` (asking again whenever another
    emitter's flush hook got there first) and return that thread."""

    def landed() -> bool:
        if figures.published and figures.published[-1].name == "netauto-publish":
            return True
        request_publish(figures)
        return False

    wait_until(landed, 10, what)
    return figures.published[-1]


# First in this file on purpose: mutmut maps the publisher thread's loop to the test that starts it.
def test_a_strict_mode_refusal_in_the_publisher_thread_neither_stops_it_nor_counts_as_an_internal_error(
    emitter: Emitter, only_the_publisher_thread_publishes: None
) -> None:
    refused = Figures(fail_with=CatalogError("refused"))
    request_publish(refused)
    publisher = published_by_the_publisher_thread(refused, "the refused publish, in the publisher thread")
    later = Figures(1)
    request_publish(later)
    assert published_by_the_publisher_thread(later, "a later publish, in the same thread") is publisher
    assert publisher.is_alive()
    assert emitter.stats()["internal_errors"] == 0  # a strict-mode error is the developer's, not an internal one


def test_figures_reach_the_emitter_from_the_publisher_thread_without_a_flush(emitter: Emitter) -> None:
    figures = Figures(3)
    request_publish(figures)
    wait_until(lambda: figures.published, 10, "the background publish")
    assert figures.published[0] is not threading.current_thread()  # the caller returned at once
    (publisher,) = [t for t in threading.enumerate() if t.name == "netauto-publish"]
    assert publisher.daemon  # never keeps the application's process alive
    wait_until(lambda: emitter.stats()["accepted"] == 1, 10, "the published count to reach the emitter")
    assert emitter.stats()["flushes"] == 0


def test_figures_asked_for_again_are_published_again(emitter: Emitter) -> None:
    first, second = Figures(1), Figures(2)
    request_publish(first)
    wait_until(lambda: first.published, 10, "the first publish")
    request_publish(second)  # the thread slept since: it wakes for the new request
    wait_until(lambda: second.published, 10, "the second publish")
    assert len(first.published) == 1  # published once: nothing was pending for it since


def test_a_failing_publish_is_counted_and_the_publisher_keeps_going(emitter: Emitter) -> None:
    broken, strict_failure, fine = Figures(fail_with=KeyError("gone")), Figures(fail_with=CatalogError("x")), Figures(1)
    request_publish(broken)
    request_publish(strict_failure)
    wait_until(lambda: broken.published and strict_failure.published, 10, "both failing publishes")
    request_publish(fine)
    wait_until(lambda: fine.published, 10, "the publisher to publish after the failures")
    wait_until(lambda: emitter.stats()["accepted"] == 1, 10, "the good figures to reach the emitter")
    assert emitter.stats()["internal_errors"] == 1  # the KeyError; a CatalogError waits for the app's flow


def test_publish_pending_hands_everything_over_in_the_calling_thread(emitter: Emitter, busy_publisher: None) -> None:
    figures = [Figures(1), Figures(2)]
    for pending in figures:
        request_publish(pending)
    publish_pending()  # as the emitter's flush hook does, before the publisher wakes
    here = threading.current_thread()
    assert [f.published for f in figures] == [[here], [here]]
    assert emitter.stats()["accepted"] == 2
    publish_pending()  # nothing pending any more
    assert [len(f.published) for f in figures] == [1, 1]


def test_a_strict_mode_error_in_one_publish_loses_no_other_figures(emitter: Emitter, busy_publisher: None) -> None:
    failing = [Figures(fail_with=CatalogError("first")), Figures(fail_with=CatalogError("second"))]
    failing.append(Figures(fail_with=KeyError("broken")))
    fine = [Figures(1), Figures(2), Figures(3)]
    everything = (*failing, *fine)
    for pending in everything:
        request_publish(pending)
    try:  # as the emitter's flush hook does (another emitter's flush thread may get there first)
        publish_pending()
    except CatalogError:
        pass  # raised once everything pending was published
    wait_until(lambda: all(f.published for f in everything), 10, "every pending publish")
    assert [len(f.published) for f in everything] == [1, 1, 1, 1, 1, 1]
    assert emitter.stats()["accepted"] == 3
    assert emitter.stats()["internal_errors"] == 1  # the KeyError; a strict-mode error is the developer's


def test_publish_pending_hands_everything_over(emitter: Emitter, busy_publisher: None) -> None:
    figures = [Figures(1), Figures(2)]
    for pending in figures:
        request_publish(pending)
    publish_pending()  # as the emitter's flush hook does, before the publisher wakes
    wait_until(lambda: all(f.published for f in figures), 10, "both publishes")
    assert emitter.stats()["accepted"] == 2
    publish_pending()  # nothing pending any more
    assert [len(f.published) for f in figures] == [1, 1]


def test_an_emitter_flush_publishes_what_is_pending(emitter: Emitter, busy_publisher: None) -> None:
    figures = Figures(4)
    request_publish(figures)
    emitter.flush()
    wait_until(lambda: figures.published, 10, "the publish")
    assert emitter.stats()["accepted"] == 1


def test_with_a_test_recorder_figures_are_published_at_once() -> None:
    with recording() as rec:
        figures = Figures(5)
        request_publish(figures)
        assert figures.published == [threading.current_thread()]
        assert rec.total("db.query", **TAGS) == 5


def test_a_forked_child_has_a_publisher_of_its_own_and_leaves_the_parents_figures_alone(
    emitter: Emitter, tmp_path: Path
) -> None:
    blocker = Blocking()
    request_publish(blocker)
    assert blocker.entered.wait(10)  # the parent's publisher is busy: what is asked for now stays pending
    parents = Figures(1)
    request_publish(parents)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                publish_pending()  # here, in the child: nothing of the parent's is pending
                child = Figures(2)
                request_publish(child)
                wait_until(lambda: child.published, 10, "the child's publisher")
                alive = [t.name for t in threading.enumerate() if t.name == "netauto-publish"]
                (tmp_path / "child").write_text(f"{len(parents.published)} {alive}")
                code = 0
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(wait_for_child(pid)) == 0
    finally:
        blocker.release.set()
    assert (tmp_path / "child").read_text() == "0 ['netauto-publish']"
    wait_until(lambda: parents.published, 10, "the parent's figures, published by the parent")
