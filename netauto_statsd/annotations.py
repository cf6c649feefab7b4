"""Lifecycle annotations: "started" / "stopped" marks in Grafana, shown on every NetAuto dashboard.

Opt-in. When an app (or an RQ worker) starts and stops it posts one Grafana
annotation (``POST /api/annotations``) carrying the host name, the version
(``DD_VERSION``, else the netauto-statsd version) and the git SHA (``GIT_SHA``),
tagged :data:`LIFECYCLE_TAGS` plus the service name and the event. Every
generated dashboard has a "Deploys" annotation query on those tags, so a deploy
or a restart is visible on every panel.

Grafana is named by ``GRAFANA_URL`` with ``GRAFANA_TOKEN`` (a service account
token, sent as ``Authorization: Bearer``) or ``GRAFANA_USER`` /
``GRAFANA_PASSWORD`` (basic auth). The token needs the ``annotations:write``
permission (the Editor role has it).

Only the standard library is used (``urllib``), so the runtime gains no
dependency. Nothing here raises into the app: an unreachable or refusing
Grafana is logged ONCE as a warning on the ``netauto_statsd`` logger (later
failures at debug level) and the app goes on. The secret is never logged.

Example:
    >>> annotations = LifecycleAnnotations.from_env()  # doctest: +SKIP
    >>> annotations.start()                             # doctest: +SKIP
    True
    >>> annotations.stop()                              # doctest: +SKIP
    True

The aiohttp integration takes ``instrument_app(app, annotations=True)``; the RQ
worker ``InstrumentedWorker(queues, annotations=True)``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netauto_statsd._log import log

#: Tags every lifecycle annotation carries; the dashboards' "Deploys" query filters on them.
LIFECYCLE_TAGS = ("netauto", "deploy")
#: Seconds one annotation request may take (it runs at start-up and shutdown only).
TIMEOUT_S = 3.0


class GrafanaConfigError(ValueError):
    """``GRAFANA_URL`` or the credentials are missing or unusable."""


@dataclass(frozen=True)
class GrafanaAccess:
    """Where Grafana is and how to authenticate; ``secret`` is never shown by ``repr``.

    Attributes:
        url: base URL without credentials and without a trailing slash.
        credential: what was used, safe to print (``GRAFANA_TOKEN`` or ``GRAFANA_USER=<name>``).
        user: basic-auth user, or ``None`` for a token.
        secret: the token or the password.
    """

    url: str
    credential: str
    user: str | None = None
    secret: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GrafanaAccess:
        """Read ``GRAFANA_URL`` and ``GRAFANA_TOKEN`` or ``GRAFANA_USER``/``GRAFANA_PASSWORD``.

        A token wins over user and password. Credentials inside the URL are refused,
        so that the URL can be printed.

        Raises:
            GrafanaConfigError: URL missing or malformed, or no usable credential.
        """
        env = os.environ if env is None else env
        raw = env.get("GRAFANA_URL", "").strip()
        if not raw:
            raise GrafanaConfigError("GRAFANA_URL is not set (e.g. GRAFANA_URL=http://127.0.0.1:3000)")
        parsed = urllib.parse.urlsplit(raw)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise GrafanaConfigError(f"GRAFANA_URL must be http(s)://host[:port][/path], not {parsed.scheme}://...")
        if parsed.username or parsed.password:
            raise GrafanaConfigError(
                "GRAFANA_URL must not hold credentials: set GRAFANA_TOKEN or GRAFANA_USER/GRAFANA_PASSWORD"
            )
        url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))
        token = env.get("GRAFANA_TOKEN", "")
        if token:
            return cls(url, "GRAFANA_TOKEN (service account token)", None, token)
        user, password = env.get("GRAFANA_USER", ""), env.get("GRAFANA_PASSWORD", "")
        if user and password:
            return cls(url, f"GRAFANA_USER={user} with GRAFANA_PASSWORD", user, password)
        raise GrafanaConfigError("no Grafana credential: set GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD")

    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        if self.user is None:
            return f"Bearer {self.secret}"
        return "Basic " + base64.b64encode(f"{self.user}:{self.secret}".encode()).decode("ascii")

    def redact(self, text: str) -> str:
        """``text`` with the secret (if it appears at all) replaced by ``***``."""
        return text.replace(self.secret, "***") if self.secret else text


def _default_version(env: Mapping[str, str]) -> str:
    if env.get("DD_VERSION"):
        return env["DD_VERSION"]
    from netauto_statsd import __version__

    return __version__


class LifecycleAnnotations:
    """Posts a "started" and a "stopped" annotation to Grafana; never raises.

    Args:
        access: Grafana URL and credential (``None``: disabled, e.g. no ``GRAFANA_URL``).
        service: the ``service`` tag (default: the emitter's service, ``NETAUTO_STATSD_SERVICE``).
        version: default ``DD_VERSION``, else the netauto-statsd version.
        git_sha: default ``GIT_SHA`` (empty: not shown).
        hostname: default ``socket.gethostname()``.
        timeout: seconds per request.
    """

    def __init__(
        self,
        access: GrafanaAccess | None,
        *,
        service: str = "netauto",
        version: str = "",
        git_sha: str = "",
        hostname: str = "",
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.access = access
        self.service = service
        self.version = version
        self.git_sha = git_sha
        self.hostname = hostname or socket.gethostname()
        self.timeout = timeout
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LifecycleAnnotations:
        """Configured from the environment; disabled (with one warning) when Grafana is not configured."""
        env = os.environ if env is None else env
        options: dict[str, Any] = {
            # the emitter's service tag (config.from_env), read without its validation: never raises
            "service": env.get("NETAUTO_STATSD_SERVICE") or env.get("DD_SERVICE") or "netauto",
            "version": _default_version(env),
            "git_sha": env.get("GIT_SHA", ""),
        }
        options.update(overrides)
        try:
            access: GrafanaAccess | None = GrafanaAccess.from_env(env)
        except GrafanaConfigError as exc:
            log.warning("netauto_statsd: lifecycle annotations are off: %s", exc)
            access = None
        annotations = cls(access, **options)
        annotations._warned = access is None
        return annotations

    @property
    def tags(self) -> list[str]:
        """Tags of every annotation this process posts (the event is added per annotation)."""
        return [*LIFECYCLE_TAGS, self.service]

    def body(self, event: str, at: float | None = None) -> dict[str, Any]:
        """The JSON body of ``POST /api/annotations`` for ``event`` (``start`` or ``stop``)."""
        details = [f"version {self.version}"] + ([f"git {self.git_sha}"] if self.git_sha else [])
        verb = {"start": "started", "stop": "stopped"}.get(event, event)
        return {
            "time": int((time.time() if at is None else at) * 1000),
            "tags": [*self.tags, event],
            "text": f"{self.service} {verb} on {self.hostname} ({', '.join(details)})",
        }

    def start(self) -> bool:
        """Post the "started" annotation; True if Grafana stored it."""
        return self.post("start")

    def stop(self) -> bool:
        """Post the "stopped" annotation; True if Grafana stored it."""
        return self.post("stop")

    async def on_startup(self, _app: object = None) -> None:
        """:meth:`start` in a thread (an aiohttp ``on_startup`` signal handler)."""
        await asyncio.to_thread(self.start)

    async def on_cleanup(self, _app: object = None) -> None:
        """:meth:`stop` in a thread (an aiohttp ``on_cleanup`` signal handler)."""
        await asyncio.to_thread(self.stop)

    def post(self, event: str) -> bool:
        """Post one annotation for ``event``; failures are logged (a warning only the first time)."""
        if self.access is None:
            return False
        try:
            self._send(self.access, self.body(event))
            return True
        except Exception as exc:  # never into the app
            self._failed(self.access, event, exc)
            return False

    def _send(self, access: GrafanaAccess, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            access.url + "/api/annotations",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": access.authorization(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()

    def _failed(self, access: GrafanaAccess, event: str, exc: Exception) -> None:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code}"
            if exc.code in (401, 403):
                reason += f" with {access.credential}"
        elif isinstance(exc, urllib.error.URLError):
            reason = f"unreachable ({exc.reason})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        message = access.redact(f"netauto_statsd: {event} annotation not posted to Grafana at {access.url}: {reason}")
        if self._warned:
            log.debug("%s", message)
        else:
            self._warned = True
            log.warning("%s (the app goes on; further failures are logged at debug level)", message)


def lifecycle_annotations(option: bool | LifecycleAnnotations | None) -> LifecycleAnnotations | None:
    """What an integration's ``annotations=`` option means: ``True`` reads the environment."""
    if isinstance(option, LifecycleAnnotations):
        return option
    return LifecycleAnnotations.from_env() if option else None


__all__ = [
    "LIFECYCLE_TAGS",
    "GrafanaAccess",
    "GrafanaConfigError",
    "LifecycleAnnotations",
    "lifecycle_annotations",
]
