"""Injected faults: the demo fails on purpose so every dashboard panel has something to show.

Each deliberate failure raises an exception that is also an :class:`InjectedError`.
Frameworks log an unhandled exception with its traceback (aiohttp's
"Error handling request", RQ's "exception raised while executing"); for an
injected fault that is noise, so :func:`quiet_injected_faults` turns those log
records into one line each. Anything else - a real bug - keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

#: The loggers that print a traceback for an exception the app did not handle.
FRAMEWORK_LOGGERS = ("aiohttp.server", "aiohttp.web", "rq.worker")


class InjectedError(Exception):
    """Marks an exception the demo raises on purpose (a flaky device, a buggy browser)."""


class QuietInjectedErrors(logging.Filter):
    """Rewrite a framework's traceback log record of an injected fault into one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; shorten the ones caused by an :class:`InjectedError`."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            # RQ formats the traceback into the message itself, inside its except block
            exc = sys.exc_info()[1]
        if isinstance(exc, InjectedError):
            record.msg = "injected fault: %s: %s"
            record.args = (type(exc).__name__, exc)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_FILTER = QuietInjectedErrors()


def quiet_injected_faults() -> None:
    """Install the one-line rewrite on the framework loggers and make sure they print (idempotent).

    aiohttp logs through the root logger's handlers; when none is configured, one that
    prints ``netauto-statsd demo: <message>`` to stderr is added.
    """
    for name in FRAMEWORK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("netauto-statsd demo: %(message)s"))
        root.addHandler(handler)


#: Where the demo runs two workers or more, this one (by index) has DB metrics turned off
#: (``NETAUTO_STATSD_DISABLE=db``): its DB statements are dropped and counted in
#: ``client.dropped{reason="disabled_group"}`` while the app and the other workers feed the DB panels.
MUTED_WORKER = 1
MUTED_GROUP = "db"


def worker_env(index: int, env: dict[str, str]) -> dict[str, str]:
    """The environment of worker ``index``: ``env``, plus the disabled DB group for :data:`MUTED_WORKER`."""
    if index != MUTED_WORKER:
        return dict(env)
    groups = [g.strip() for g in env.get("NETAUTO_STATSD_DISABLE", "").split(",") if g.strip()]
    return {**env, "NETAUTO_STATSD_DISABLE": ",".join([*groups, MUTED_GROUP] if MUTED_GROUP not in groups else groups)}


def muted_worker_line(name: str) -> str:
    """The one line that says which worker has DB metrics turned off."""
    return (
        f"injected fault: {name} runs with NETAUTO_STATSD_DISABLE={MUTED_GROUP} (an operator turned DB metrics "
        "off for it): its DB statements are dropped and counted"
    )
