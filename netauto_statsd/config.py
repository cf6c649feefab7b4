"""Settings, read from the environment when the emitter is configured (never at import).

Connection variables are datadog's own and are resolved by its DogStatsd client:
``DD_DOGSTATSD_URL`` (``udp://host:port`` or ``unix:///path``) wins over
``DD_AGENT_HOST`` + ``DD_DOGSTATSD_PORT``; ``DD_DOGSTATSD_DISABLE=true`` sends nothing.
``DD_ENV`` and ``DD_SERVICE`` are honoured as defaults for our constant tags.

Ours (all optional):

=================================  =========================================================
``NETAUTO_STATSD_NAMESPACE``       prefix of every metric name (default ``netauto``)
``NETAUTO_STATSD_ENV``             value of the ``env`` tag (default ``DD_ENV`` or ``dev``)
``NETAUTO_STATSD_SERVICE``         value of the ``service`` tag (default ``DD_SERVICE`` or ``netauto``)
``NETAUTO_STATSD_STRICT``          ``1`` raises on undeclared metrics/tags (tests); default off
``NETAUTO_STATSD_FLUSH_INTERVAL``  seconds between background flushes (default ``0.5``)
``NETAUTO_STATSD_MAX_PACKET``      max datagram payload in bytes (default ``1432``)
``NETAUTO_STATSD_TRANSPORT``       ``dogstatsd`` (default) or ``statsd`` (plain, tags in the name)
``NETAUTO_STATSD_DISABLE``         metric groups to drop, comma-separated (``db,http``); names
                                   from ``netauto-statsd catalog`` (the catalog's families)
=================================  =========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from netauto_statsd.catalog import DEFAULT_NAMESPACE, groups

_TRUE = {"1", "true", "yes", "on"}
TRANSPORTS = ("dogstatsd", "statsd")


class ConfigError(ValueError):
    """A setting has a value that cannot be used; ``setting`` names it."""

    def __init__(self, message: str, setting: str = "") -> None:
        super().__init__(message)
        self.setting = setting


#: The environment variable behind each validated setting, for error messages.
_VARIABLES = {
    "namespace": "NETAUTO_STATSD_NAMESPACE",
    "flush_interval": "NETAUTO_STATSD_FLUSH_INTERVAL",
    "max_packet": "NETAUTO_STATSD_MAX_PACKET",
    "transport": "NETAUTO_STATSD_TRANSPORT",
    "disabled_groups": "NETAUTO_STATSD_DISABLE",
}


@dataclass(frozen=True)
class Settings:
    """Resolved emitter settings. Build with :func:`from_env` or directly in tests."""

    namespace: str = DEFAULT_NAMESPACE
    env: str = "dev"
    service: str = "netauto"
    strict: bool = False
    flush_interval: float = 0.5
    max_packet: int = 1432
    transport: str = "dogstatsd"
    disabled: bool = False
    #: explicit destination; ``None`` lets datadog resolve DD_* variables
    host: str | None = None
    port: int | None = None
    #: metric groups (catalog families) dropped at the emitter, e.g. ``("db", "http")``
    disabled_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [g for g in self.disabled_groups if g not in groups()]
        if unknown:
            raise ConfigError(
                f"unknown metric group(s) {', '.join(map(repr, unknown))}; groups: {', '.join(groups())}",
                "disabled_groups",
            )
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}", "transport")
        if not 0.01 <= self.flush_interval <= 60:
            raise ConfigError(f"flush_interval must be within 0.01..60 s, got {self.flush_interval}", "flush_interval")
        if not 64 <= self.max_packet <= 65000:
            raise ConfigError(f"max_packet must be within 64..65000 bytes, got {self.max_packet}", "max_packet")
        if self.namespace and not all(part.isidentifier() for part in self.namespace.split(".")):
            raise ConfigError(f"namespace must be dotted identifiers, got {self.namespace!r}", "namespace")


def _number(env: Mapping[str, str], key: str, default: float, kind: type = float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(kind(raw))
    except ValueError as exc:
        raise ConfigError(f"{key}={raw!r} is not a number") from exc


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default: ``os.environ``).

    Raises:
        ConfigError: a variable holds an unusable value (the message names it).
    """
    env = os.environ if env is None else env
    try:
        return Settings(
            namespace=env.get("NETAUTO_STATSD_NAMESPACE", DEFAULT_NAMESPACE),
            env=env.get("NETAUTO_STATSD_ENV") or env.get("DD_ENV") or "dev",
            service=env.get("NETAUTO_STATSD_SERVICE") or env.get("DD_SERVICE") or "netauto",
            strict=env.get("NETAUTO_STATSD_STRICT", "").lower() in _TRUE,
            flush_interval=_number(env, "NETAUTO_STATSD_FLUSH_INTERVAL", 0.5),
            max_packet=int(_number(env, "NETAUTO_STATSD_MAX_PACKET", 1432, int)),
            transport=env.get("NETAUTO_STATSD_TRANSPORT", "dogstatsd").lower(),
            disabled=env.get("DD_DOGSTATSD_DISABLE", "").lower() in _TRUE,
            disabled_groups=tuple(g.strip() for g in env.get("NETAUTO_STATSD_DISABLE", "").split(",") if g.strip()),
        )
    except ConfigError as exc:
        variable = _VARIABLES.get(exc.setting)
        if variable is None or variable not in env:
            raise
        raise ConfigError(f"{variable}={env[variable]!r}: {exc}", exc.setting) from None
