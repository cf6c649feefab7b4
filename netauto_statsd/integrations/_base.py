"""The contract every integration follows: install / uninstall, idempotent, version-checked.

Each integration has one :class:`Instrumentor` subclass. The base makes
``install`` and ``uninstall`` idempotent (a second install, or an uninstall of
something never installed, does nothing) and checks, once per process, that the
framework's installed version is one the integration supports. The supported
ranges are declared here, in :data:`SUPPORTED`, and nowhere else (the install
extras in ``setup.cfg`` are checked against this table by a test).

The public helpers (``instrument_app``, ``instrument_engine``, the RQ worker
classes) are thin wrappers over their integration's instrumentor.
"""

from __future__ import annotations

import re
import threading
from importlib import metadata
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["SUPPORTED", "Instrumentor", "UnsupportedVersionError", "check_supported"]

#: integration module -> (distribution name, supported version range).
SUPPORTED: dict[str, tuple[str, str]] = {
    "netauto_statsd.integrations.aiohttp": ("aiohttp", ">=3.9,<4"),
    "netauto_statsd.integrations.rq": ("rq", ">=2.0,<4"),
    "netauto_statsd.integrations.sqlalchemy": ("SQLAlchemy", ">=2.0,<3"),
}

Target = TypeVar("Target")
State = TypeVar("State")

_checked: set[str] = set()
_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|<|>)\s*([0-9][0-9.]*)\s*$")


class UnsupportedVersionError(RuntimeError):
    """The installed framework is outside the range its integration supports."""


def _release(text: str) -> tuple[int, ...]:
    parts = re.match(r"[0-9]+(?:\.[0-9]+)*", text)
    return tuple(int(p) for p in parts.group(0).split(".")) if parts else ()


def _satisfies(version: str, spec: str) -> bool:
    found = _release(version)
    for clause in spec.split(","):
        matched = _CLAUSE.match(clause)
        if matched is None:
            raise ValueError(f"unsupported version clause {clause!r}")
        op, bound_text = matched.groups()
        bound = _release(bound_text)
        width = max(len(found), len(bound))
        left, right = found + (0,) * (width - len(found)), bound + (0,) * (width - len(bound))
        ok = {
            ">=": left >= right,
            "<=": left <= right,
            ">": left > right,
            "<": left < right,
            "==": left == right,
            "!=": left != right,
        }[op]
        if not ok:
            return False
    return True


def check_supported(integration: str, version: str | None = None) -> None:
    """Raise :class:`UnsupportedVersionError` if ``integration``'s framework is outside :data:`SUPPORTED`.

    ``version`` defaults to the installed distribution's; checked once per process.

    >>> try:
    ...     check_supported("netauto_statsd.integrations.rq", "1.16")
    ... except UnsupportedVersionError as exc:
    ...     print(exc)
    netauto_statsd.integrations.rq supports rq>=2.0,<4; found 1.16
    """
    installed = version is None
    if installed and integration in _checked:
        return
    distribution, spec = SUPPORTED[integration]
    if version is None:
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            raise UnsupportedVersionError(f"{integration} needs {distribution}{spec}; it is not installed") from None
    if not _satisfies(version, spec):
        raise UnsupportedVersionError(f"{integration} supports {distribution}{spec}; found {version}")
    if installed:  # an explicit version says nothing about the installed one
        _checked.add(integration)


class Instrumentor(Generic[Target, State]):
    """Base of an integration: idempotent :meth:`install` / :meth:`uninstall` of one target.

    Subclasses set :attr:`integration` (a key of :data:`SUPPORTED`) and implement
    :meth:`_state_of`, :meth:`_install` and :meth:`_uninstall`. The base holds a
    lock around them, so two threads installing the same target install it once.
    """

    integration: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def install(self, target: Target, **options: Any) -> Target:
        """Instrument ``target``; does nothing if it already is. Returns ``target``.

        Raises:
            UnsupportedVersionError: the installed framework is outside the supported range.
        """
        check_supported(self.integration)
        with self._lock:
            if self._state_of(target) is None:
                self._install(target, **options)
        return target

    def uninstall(self, target: Target) -> Target:
        """Remove what :meth:`install` added to ``target``; does nothing if it is not instrumented."""
        with self._lock:
            state = self._state_of(target)
            if state is not None:
                self._uninstall(target, state)
        return target

    def after_fork_in_child(self) -> None:
        """A forked child gets a fresh lock (the parent's may have been held at the fork)."""
        self._lock = threading.RLock()

    def is_installed(self, target: Target) -> bool:
        """True while ``target`` is instrumented."""
        return self._state_of(target) is not None

    # -- what an integration implements
    def _state_of(self, target: Target, /) -> State | None:
        """What :meth:`_install` left on ``target``, or ``None`` if it is not instrumented."""
        raise NotImplementedError

    def _install(self, target: Target, /, **options: Any) -> None:
        raise NotImplementedError

    def _uninstall(self, target: Target, state: State, /) -> None:
        raise NotImplementedError
