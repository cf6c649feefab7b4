"""Settings, read from the environment when the emitter is configured (never at import).

Every variable is checked here, in one place: a value that cannot be used is a
:class:`ConfigError` naming the variable, never a silent fallback.

Destination (datadog's variable names, resolved here for both transports):
``DD_DOGSTATSD_URL`` (``udp://host:port`` or ``unix:///path``; port required) wins
over ``DD_AGENT_HOST`` (default ``localhost``) + ``DD_DOGSTATSD_PORT`` (default
``8125``, 1..65535). ``DD_DOGSTATSD_DISABLE`` (a boolean) sends nothing.
``DD_ENV`` and ``DD_SERVICE`` are honoured as defaults for our constant tags.

Booleans accept ``1``/``true``/``yes``/``on`` and ``0``/``false``/``no``/``off``
(any case, empty = default); anything else is an error.

Ours (all optional):

=================================  =========================================================
``NETAUTO_STATSD_NAMESPACE``       prefix of every metric name (default ``netauto``)
``NETAUTO_STATSD_ENV``             value of the ``env`` tag (default ``DD_ENV`` or ``dev``)
``NETAUTO_STATSD_SERVICE``         value of the ``service`` tag (default ``DD_SERVICE`` or ``netauto``)
``NETAUTO_STATSD_STRICT``          boolean: raise on undeclared metrics/tags (tests); default off
``NETAUTO_STATSD_FLUSH_INTERVAL``  seconds between background flushes, 0.01..60 (default ``0.5``)
``NETAUTO_STATSD_MAX_PACKET``      max datagram payload in bytes, 64..65000 (default ``1432``)
``NETAUTO_STATSD_TRANSPORT``       ``dogstatsd`` (default) or ``statsd`` (plain, tags in the name;
                                   needs the ``statsd`` package)
``NETAUTO_STATSD_EXPORTER_COMPAT``  oldest statsd_exporter version to stay compatible with, e.g.
                                   ``0.26`` (one histogram value per line, for exporters older
                                   than v0.27.1); empty (default): the newest wire
``NETAUTO_STATSD_DISABLE``         metric groups to drop, comma-separated (``db,http``); names
                                   from ``netauto-statsd catalog`` (the catalog's families)
``NETAUTO_STATSD_PACE_RATE``       bytes/s (as the kernel charges them: a full 1432-byte datagram
                                   counts 2368) that a receiver the client cannot observe (not on
                                   loopback) drains, 10000..10000000000 (default ``3000000``);
                                   ``0``: no pacing at all (wire/pacing.py)
``NETAUTO_STATSD_PACE_BURST``      bytes such a receiver's buffer takes at once, 4096..1073741824
                                   (default ``106496``; half of ``net.core.rmem_default`` on loopback)
=================================  =========================================================
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from netauto_statsd._log import log
from netauto_statsd.catalog import DEFAULT_NAMESPACE, groups

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
TRANSPORTS = ("dogstatsd", "statsd")
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
#: DD_DOGSTATSD_URL schemes for a unix socket (datadog's client takes the whole URL as the path).
UNIX_SCHEMES = ("unix", "unixgram", "unixstream")


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
    "exporter_compat": "NETAUTO_STATSD_EXPORTER_COMPAT",
    "port": "DD_DOGSTATSD_PORT",
    "disabled_groups": "NETAUTO_STATSD_DISABLE",
    "pace_rate": "NETAUTO_STATSD_PACE_RATE",
    "pace_burst": "NETAUTO_STATSD_PACE_BURST",
}

#: The first statsd_exporter release that accepts DogStatsD multi-value lines (``name:v1:v2|h``).
MULTI_VALUE_SINCE = (0, 27, 1)


def exporter_version(text: str) -> tuple[int, ...]:
    """Parse an exporter version such as ``0.26``, ``v0.26.1`` into a tuple of ints.

    >>> exporter_version("v0.26.1"), exporter_version("0.26")
    ((0, 26, 1), (0, 26, 0))

    Raises:
        ValueError: ``text`` is not ``[v]MAJOR.MINOR[.PATCH]``.
    """
    parts = text.strip().removeprefix("v").split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not an exporter version like 0.26 or v0.26.1: {text!r}")
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


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
    #: UDP destination; ``None`` means the default (``localhost``, ``8125``)
    host: str | None = None
    port: int | None = None
    #: oldest statsd_exporter version to stay compatible with (``""``: the newest wire)
    exporter_compat: str = ""
    #: a unix socket destination (``DD_DOGSTATSD_URL=unix://...``, DogStatsD only); wins over host/port
    socket_path: str | None = None
    #: metric groups (catalog families) dropped at the emitter, e.g. ``("db", "http")``
    disabled_groups: tuple[str, ...] = ()
    #: pacing (wire/pacing.py): bytes/s and burst bytes of a receiver the client cannot observe;
    #: ``None``: the defaults; ``pace_rate=0``: no pacing
    pace_rate: int | None = None
    pace_burst: int | None = None

    def __post_init__(self) -> None:
        unknown = [g for g in self.disabled_groups if g not in groups()]
        if unknown:
            raise ConfigError(
                f"unknown metric group(s) {', '.join(map(repr, unknown))}; groups: {', '.join(groups())}",
                "disabled_groups",
            )
        if self.exporter_compat:
            try:
                exporter_version(self.exporter_compat)
            except ValueError as exc:
                raise ConfigError(f"exporter_compat: {exc}", "exporter_compat") from None
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}", "transport")
        if self.transport == "statsd" and not self.disabled and not _installed("statsd"):
            raise ConfigError("transport 'statsd' needs the statsd package (extra: plain)", "transport")
        if self.transport == "statsd" and self.socket_path:
            raise ConfigError("transport 'statsd' sends UDP only, not to a unix socket", "transport")
        if not 0.01 <= self.flush_interval <= 60:
            raise ConfigError(f"flush_interval must be within 0.01..60 s, got {self.flush_interval}", "flush_interval")
        if not 64 <= self.max_packet <= 65000:
            raise ConfigError(f"max_packet must be within 64..65000 bytes, got {self.max_packet}", "max_packet")
        if self.namespace and not all(part.isidentifier() for part in self.namespace.split(".")):
            raise ConfigError(f"namespace must be dotted identifiers, got {self.namespace!r}", "namespace")
        if self.pace_rate is not None and self.pace_rate != 0 and not 10_000 <= self.pace_rate <= 10**10:
            raise ConfigError(
                f"pace_rate must be 0 (no pacing) or within 10000..10000000000 bytes/s, got {self.pace_rate}",
                "pace_rate",
            )
        if self.pace_burst is not None and not 4096 <= self.pace_burst <= 1 << 30:
            raise ConfigError(f"pace_burst must be within 4096..1073741824 bytes, got {self.pace_burst}", "pace_burst")
        if self.port is not None and not (isinstance(self.port, int) and 1 <= self.port <= 65535):
            raise ConfigError(f"port must be within 1..65535, got {self.port!r}", "port")

    @property
    def address(self) -> tuple[str, int]:
        """The UDP destination, defaults applied: the one place both transports read it from."""
        return self.host or DEFAULT_HOST, self.port or DEFAULT_PORT

    @property
    def multi_value(self) -> bool:
        """Whether histogram samples of one context may share a line (exporter >= v0.27.1)."""
        return not self.exporter_compat or exporter_version(self.exporter_compat) >= MULTI_VALUE_SINCE


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def parse_bool(env: Mapping[str, str], key: str, default: bool = False) -> bool:
    """``key`` as a boolean: 1/true/yes/on or 0/false/no/off (any case); unset or empty is ``default``.

    Raises:
        ConfigError: anything else (``NETAUTO_STATSD_STRICT=y`` is not silently "off").
    """
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{key}={raw!r} is not a boolean (use 1/true/yes/on or 0/false/no/off)", key)


def _number(env: Mapping[str, str], key: str, default: float, kind: type = float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(kind(raw))
    except ValueError as exc:
        raise ConfigError(f"{key}={raw!r} is not a number", key) from exc


def _optional_int(env: Mapping[str, str], key: str) -> int | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a whole number of bytes", key) from None


def _port(text: str, key: str, raw: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"{key}={raw!r}: the port must be a number within 1..65535", key)
    return port


def destination(env: Mapping[str, str]) -> tuple[str | None, int | None, str | None]:
    """``(host, port, socket_path)`` from the DD_* variables; unset ones stay ``None`` (defaults).

    Raises:
        ConfigError: a URL without a host or port, with another scheme, or a bad port.
    """
    url = (env.get("DD_DOGSTATSD_URL") or "").strip()
    if url:
        key = "DD_DOGSTATSD_URL"
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "udp://[::1" and the like
            raise ConfigError(f"{key}={url!r} is not a URL: {exc}", key) from None
        if parts.scheme in UNIX_SCHEMES:
            if not (parts.netloc + parts.path).strip("/"):
                raise ConfigError(f"{key}={url!r} names no socket path", key)
            return None, None, url
        if parts.scheme != "udp":
            raise ConfigError(f"{key}={url!r}: the scheme must be udp:// or unix://", key)
        host, sep, port = parts.netloc.rpartition(":")
        if not sep or parts.path not in ("", "/") or not host.strip("[]").strip():  # a blank host is no host
            raise ConfigError(f"{key}={url!r} must be udp://host:port (both required)", key)
        return host.strip("[]"), _port(port, key, url), None
    agent_host = (env.get("DD_AGENT_HOST") or "").strip() or None
    raw_port = (env.get("DD_DOGSTATSD_PORT") or "").strip()
    agent_port = _port(raw_port, "DD_DOGSTATSD_PORT", raw_port) if raw_port else None
    return agent_host, agent_port, None


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default: ``os.environ``).

    Raises:
        ConfigError: a variable holds an unusable value (the message names it).
    """
    env = os.environ if env is None else env
    try:
        host, port, socket_path = destination(env)
        return Settings(
            namespace=env.get("NETAUTO_STATSD_NAMESPACE", DEFAULT_NAMESPACE),
            env=env.get("NETAUTO_STATSD_ENV") or env.get("DD_ENV") or "dev",
            service=env.get("NETAUTO_STATSD_SERVICE") or env.get("DD_SERVICE") or "netauto",
            strict=parse_bool(env, "NETAUTO_STATSD_STRICT"),
            flush_interval=_number(env, "NETAUTO_STATSD_FLUSH_INTERVAL", 0.5),
            max_packet=int(_number(env, "NETAUTO_STATSD_MAX_PACKET", 1432, int)),
            transport=env.get("NETAUTO_STATSD_TRANSPORT", "dogstatsd").strip().lower(),
            disabled=parse_bool(env, "DD_DOGSTATSD_DISABLE"),
            host=host,
            port=port,
            socket_path=socket_path,
            exporter_compat=env.get("NETAUTO_STATSD_EXPORTER_COMPAT", "").strip(),
            disabled_groups=tuple(g.strip() for g in env.get("NETAUTO_STATSD_DISABLE", "").split(",") if g.strip()),
            pace_rate=_optional_int(env, "NETAUTO_STATSD_PACE_RATE"),
            pace_burst=_optional_int(env, "NETAUTO_STATSD_PACE_BURST"),
        )
    except ConfigError as exc:
        variable = _VARIABLES.get(exc.setting)
        if variable is None or variable not in env:  # already named by its variable (or not from one)
            raise
        raise ConfigError(f"{variable}={env[variable]!r}: {exc}", variable) from None


def warn_bad_configuration(error: Exception) -> None:
    """Say once, on stderr, that metrics are off because of ``error`` (also logged).

    Written to ``sys.stderr`` directly: the ``netauto_statsd`` logger only has a
    do-nothing handler, so an app that never configured logging would see nothing.
    """
    message = f"netauto_statsd: bad configuration, NO metrics will be sent: {error} (configure() raises this error)"
    log.error("%s", message)
    try:
        print(message, file=sys.stderr, flush=True)
    except Exception:  # a closed stderr must not break the app either
        pass
