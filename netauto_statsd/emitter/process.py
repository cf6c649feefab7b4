"""The process-wide emitter: created on first use, replaced by :func:`configure` or the test recorder."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.catalog import groups
from netauto_statsd.config import ConfigError, Settings, from_env, warn_bad_configuration
from netauto_statsd.emitter import epoch
from netauto_statsd.emitter.core import Emitter
from netauto_statsd.wire.base import UnusableTransport

_default: Emitter | None = None
_default_lock = threading.Lock()


def get_emitter() -> Emitter:
    """Return the process-wide emitter, creating it from the environment on first use.

    A bad environment never breaks the app: one warning goes to stderr (and the
    ``netauto_statsd`` logger), and an emitter that sends nothing but counts every
    sample as failed (``stats()["samples_failed"]``) is used instead (call
    :func:`configure` to see the error raised). Unknown names in
    ``NETAUTO_STATSD_DISABLE`` are warned about and ignored; the known ones apply.
    """
    global _default
    emitter = _default
    if emitter is None:
        with _default_lock:
            if _default is None:
                _default = _from_environment()
                epoch.bump()
            emitter = _default
    return emitter


def _from_environment() -> Emitter:
    try:
        return Emitter(from_env())
    except ConfigError as exc:
        if exc.setting in ("disabled_groups", "NETAUTO_STATSD_DISABLE"):
            known = set(groups())
            names = os.environ.get("NETAUTO_STATSD_DISABLE", "").split(",")
            env = {**os.environ, "NETAUTO_STATSD_DISABLE": ",".join(n for n in names if n.strip() in known)}
            _warn(f"{exc}; ignoring the unknown names")
            try:
                return Emitter(from_env(env))
            except ValueError as again:
                exc = again  # type: ignore[assignment]
        return _unusable(exc)
    except ValueError as exc:
        return _unusable(exc)


def _unusable(error: Exception) -> Emitter:
    """An emitter that sends nothing and counts every sample as failed, after one warning on stderr."""
    warn_bad_configuration(error)
    return Emitter(Settings(disabled=True), transport=UnusableTransport(str(error)))


def _warn(message: str) -> None:
    """One clear line on stderr even if the app never configured logging, and on our logger."""
    log.error("netauto_statsd: %s", message)
    try:
        print(f"netauto_statsd: {message}", file=sys.stderr)
    except Exception:  # pragma: no cover - a closed stderr must not break the app
        pass


def set_emitter(emitter: Emitter | None) -> Emitter | None:
    """Install ``emitter`` as the process-wide one (``None``: recreate on next use); return the previous."""
    global _default
    with _default_lock:
        previous, _default = _default, emitter
        epoch.bump()
    return previous


def configure(settings: Settings | None = None, **overrides: Any) -> Emitter:
    """Create the process-wide emitter now, from ``settings`` or the environment plus ``overrides``.

    Raises:
        ConfigError: a setting is unusable (unlike implicit first use, which only warns).

    Example:
        >>> configure(host="127.0.0.1", port=9125, env="prod")  # doctest: +SKIP
    """
    base = settings if settings is not None else from_env()
    emitter = Emitter(dataclasses.replace(base, **overrides))
    previous = set_emitter(emitter)
    if previous is not None:
        previous.close()
    return emitter


def flush() -> int:
    """Flush the process-wide emitter now (see :meth:`Emitter.flush`)."""
    return get_emitter().flush()


def stats() -> dict[str, int]:
    """Counters of the process-wide emitter (see :meth:`Emitter.stats`)."""
    return get_emitter().stats()
