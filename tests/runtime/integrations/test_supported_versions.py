"""The supported-version check every integration runs at install, and the install contract's lock.

``SUPPORTED`` is the one table of ranges; an entry added to it (as a new
integration would) is checked with every comparison a range may use, against
explicit versions and against what is installed.
"""

from __future__ import annotations

import os
import re
import threading
from importlib import metadata
from pathlib import Path

import pytest

from netauto_statsd.integrations._base import SUPPORTED, Instrumentor, UnsupportedVersionError, check_supported
from tests.support import wait_until

FAKE = "netauto_statsd.integrations.fake"


@pytest.mark.parametrize(
    ("spec", "version", "supported"),
    [
        # each comparison on its bound, and on either side of it
        (">=2.0", "2.0", True),
        (">=2.0", "1.99", False),
        ("<=2.0", "2.0", True),
        ("<=2.0", "2.0.1", False),
        (">2.0", "2.0", False),
        (">2.0", "2.0.1", True),
        ("<2.0", "2.0", False),
        ("<2.0", "1.9.9", True),
        ("==2.0", "2.0.0", True),  # missing parts count as 0
        ("==2.0", "2", True),
        ("==2.0", "2.0.1", False),
        ("!=2.0", "2.0.0", False),
        ("!=2.0", "2.1", True),
        # a shorter version against a longer bound, and the other way round
        (">=3.9", "4", True),
        (">=3.9.2", "3.9", False),
        ("<4", "3.99.99", True),
        ("<4", "4.0.0", False),
        # every clause must hold
        (">=2.0,<4", "3.0.0", True),
        (">=2.0,<4", "4.1", False),
        (">=2.0,<4", "1.16", False),
        (" >= 2.0 , < 4 ", "2.5", True),  # spaces around operators and commas
        # the release part only: pre-releases and local versions compare by their numbers
        (">=2.0,<3", "2.1.0rc1", True),
        (">=2.0,<3", "2.1.9+local.1", True),
        (">=2.0,<3", "3.0.0a1", False),
        (">=10,<11", "10.2", True),  # numbers, not text ("10" < "9" as text)
        (">=9", "10", True),
        (">=2.0", "unknown", False),  # no release number at all: read as 0
        ("<2.0", "dev", True),
    ],
)
def test_a_version_is_checked_against_every_clause_of_its_range(
    monkeypatch: pytest.MonkeyPatch, spec: str, version: str, supported: bool
) -> None:
    monkeypatch.setitem(SUPPORTED, FAKE, ("fakeframework", spec))
    if supported:
        check_supported(FAKE, version)
        return
    with pytest.raises(UnsupportedVersionError) as raised:
        check_supported(FAKE, version)
    assert str(raised.value) == f"{FAKE} supports fakeframework{spec}; found {version}"


def test_a_range_with_a_clause_it_cannot_read_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUPPORTED, FAKE, ("fakeframework", ">=2.0,~=2.1"))
    with pytest.raises(ValueError, match=re.escape("unsupported version clause '~=2.1'")):
        check_supported(FAKE, "2.1")


def test_a_framework_that_is_not_installed_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUPPORTED, FAKE, ("netauto-no-such-distribution", ">=1.0,<2"))
    with pytest.raises(UnsupportedVersionError) as raised:
        check_supported(FAKE)
    assert str(raised.value) == f"{FAKE} needs netauto-no-such-distribution>=1.0,<2; it is not installed"


def test_an_explicit_version_that_is_supported_does_not_stand_for_the_installed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"{FAKE}.explicit.{os.getpid()}"
    monkeypatch.setitem(SUPPORTED, name, ("netauto-no-such-distribution", ">=1.0,<2"))
    check_supported(name, "1.5")
    with pytest.raises(UnsupportedVersionError, match="it is not installed"):
        check_supported(name)


def test_the_installed_version_is_checked_once_per_process_and_an_explicit_one_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = metadata.version("SQLAlchemy")
    name = f"{FAKE}.once.{os.getpid()}.{threading.get_ident()}"  # never checked before in this process
    monkeypatch.setitem(SUPPORTED, name, ("SQLAlchemy", f"=={installed}"))
    check_supported(name)  # the installed one: supported, remembered
    monkeypatch.setitem(SUPPORTED, name, ("SQLAlchemy", f"!={installed}"))
    check_supported(name)  # the installed version is not read again
    with pytest.raises(UnsupportedVersionError, match=re.escape(f"found {installed}")):
        check_supported(name, installed)  # an explicit version is always checked


def test_an_installed_version_outside_the_range_is_refused_and_not_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = metadata.version("SQLAlchemy")
    name = f"{FAKE}.refused.{os.getpid()}"
    monkeypatch.setitem(SUPPORTED, name, ("SQLAlchemy", f"!={installed}"))
    for _ in range(2):  # refused every time: a refusal is not remembered as checked
        with pytest.raises(UnsupportedVersionError, match=re.escape(f"supports SQLAlchemy!={installed}; found")):
            check_supported(name)


def wait_for_child(pid: int) -> int:
    """The exit status of child ``pid``; a child still running after 30 s is killed (a test never hangs)."""
    ended: list[int] = []

    def reaped() -> bool:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append(status)
        return bool(done)

    try:
        wait_until(reaped, 30, "the forked child to exit")
    except AssertionError:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    return ended[0]


class _Listed(Instrumentor[list[str], str]):
    """An integration whose target is a list: installed means it holds "installed"."""

    integration = "netauto_statsd.integrations.sqlalchemy"  # a supported, installed framework

    def _state_of(self, target: list[str], /) -> str | None:
        return "installed" if "installed" in target else None

    def _install(self, target: list[str], /, **options: object) -> None:
        target.append("installed")

    def _uninstall(self, target: list[str], state: str, /) -> None:
        target.remove(state)


def test_a_forked_child_installs_and_uninstalls_with_a_lock_of_its_own(tmp_path: Path) -> None:
    instrumentor = _Listed()
    target: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with instrumentor._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(30)
    try:
        pid = os.fork()  # the parent's lock is held by a thread the child does not have
        if pid == 0:
            code = 1
            try:
                instrumentor.after_fork_in_child()
                instrumentor.install(target)
                installed = instrumentor.is_installed(target)
                instrumentor.uninstall(target)
                (tmp_path / "child").write_text(f"{installed} {target}")
                code = 0
            finally:
                os._exit(code)
        status = wait_for_child(pid)
    finally:
        release.set()
        holder.join(30)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "child").read_text() == "True []"
