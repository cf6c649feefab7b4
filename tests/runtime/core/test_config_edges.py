"""The edges of the settings: port bounds, unix socket paths, the bad-configuration warning.

Written for mutants of ``netauto_statsd.config`` that survived the suite
(docs/testing.md, "Mutation testing"): the ends of the port range, a unix URL
naming no path, and the warning's exact text in the log and on a block-buffered
stderr.
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from netauto_statsd.catalog import groups
from netauto_statsd.config import ConfigError, from_env, warn_bad_configuration


@pytest.mark.parametrize("port", [1, 65535])
def test_the_ends_of_the_port_range_are_accepted_in_both_variables(port: int) -> None:
    assert from_env({"DD_DOGSTATSD_PORT": str(port)}).port == port
    assert from_env({"DD_DOGSTATSD_URL": f"udp://127.0.0.1:{port}"}).port == port


@pytest.mark.parametrize("port", ["0", "65536", "-1", "-2"])
def test_ports_beyond_the_range_are_refused_in_both_variables(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"DD_DOGSTATSD_PORT": port})
    assert str(caught.value) == f"DD_DOGSTATSD_PORT='{port}': the port must be a number within 1..65535"
    url = f"udp://127.0.0.1:{port}"
    with pytest.raises(ConfigError) as caught:
        from_env({"DD_DOGSTATSD_URL": url})
    assert str(caught.value) == f"DD_DOGSTATSD_URL='{url}': the port must be a number within 1..65535"
    assert caught.value.setting == "DD_DOGSTATSD_URL"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("udp://127.0.0.1:9125/", "127.0.0.1"),
        ("udp://X:9125", "X"),
        ("udp://[::1]:9125", "::1"),
    ],
)
def test_a_udp_url_gives_its_host_without_brackets_and_may_end_in_a_slash(url: str, host: str) -> None:
    settings = from_env({"DD_DOGSTATSD_URL": url})
    assert (settings.host, settings.port, settings.socket_path) == (host, 9125, None)


@pytest.mark.parametrize(
    "url", ["udp:// :9125", "udp://\t\x0b :9125", "udp://:9125", "udp://127.0.0.1:9125/x", "udp://127.0.0.1"]
)
def test_a_udp_url_without_a_host_or_port_or_with_a_path_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"DD_DOGSTATSD_URL": url})
    assert str(caught.value) == f"DD_DOGSTATSD_URL={url!r} must be udp://host:port (both required)"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NETAUTO_STATSD_FLUSH_INTERVAL": "abc"}, "NETAUTO_STATSD_FLUSH_INTERVAL='abc' is not a number"),
        (
            {"NETAUTO_STATSD_FLUSH_INTERVAL": "-1"},
            "NETAUTO_STATSD_FLUSH_INTERVAL='-1': flush_interval must be within 0.01..60 s, got -1.0",
        ),
        ({"NETAUTO_STATSD_PACE_BURST": "x"}, "NETAUTO_STATSD_PACE_BURST='x' is not a whole number of bytes"),
    ],
)
def test_an_error_names_the_variable_and_its_value_exactly_once(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env(env)
    assert str(caught.value) == message
    assert caught.value.setting == next(iter(env))


@pytest.mark.parametrize("stub", [None, types.ModuleType("statsd")], ids=["blocked", "without-spec"])
def test_the_statsd_transport_needs_a_findable_statsd_package(monkeypatch: pytest.MonkeyPatch, stub: object) -> None:
    """A ``statsd`` that cannot be imported (``None`` in ``sys.modules``) or found (no spec) is refused."""
    monkeypatch.setitem(sys.modules, "statsd", stub)
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_TRANSPORT": "statsd"})
    assert str(caught.value) == (
        "NETAUTO_STATSD_TRANSPORT='statsd': transport 'statsd' needs the statsd package (extra: plain)"
    )
    assert caught.value.setting == "NETAUTO_STATSD_TRANSPORT"
    assert from_env({"NETAUTO_STATSD_TRANSPORT": "statsd", "DD_DOGSTATSD_DISABLE": "1"}).disabled  # sends nothing


@pytest.mark.parametrize("url", ["unix://", "unix:///", "unixgram:////", "unixstream://"])
def test_a_unix_url_without_a_path_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="names no socket path") as caught:
        from_env({"DD_DOGSTATSD_URL": url})
    assert caught.value.setting == "DD_DOGSTATSD_URL"


@pytest.mark.parametrize("url", ["unix:///XX", "unix://X", "unixgram:///run/X/X.sock"])
def test_a_unix_url_with_any_path_is_the_socket(url: str) -> None:
    settings = from_env({"DD_DOGSTATSD_URL": url})
    assert (settings.socket_path, settings.host, settings.port) == (url, None, None)


def test_a_config_error_made_without_a_setting_names_none() -> None:
    error = ConfigError("something is wrong")
    assert (str(error), error.setting) == ("something is wrong", "")


def test_the_warning_is_logged_and_reaches_a_block_buffered_stderr_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An app may point ``sys.stderr`` at a file (fully buffered): the warning must not wait in its buffer."""
    expected = (
        "netauto_statsd: bad configuration, NO metrics will be sent: "
        "NETAUTO_STATSD_FLUSH_INTERVAL='abc' is not a number (configure() raises this error)"
    )
    error = ConfigError("NETAUTO_STATSD_FLUSH_INTERVAL='abc' is not a number", "NETAUTO_STATSD_FLUSH_INTERVAL")
    path = tmp_path / "stderr.log"
    with path.open("w", buffering=65536) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        with caplog.at_level(logging.ERROR, logger="netauto_statsd"):
            warn_bad_configuration(error)
        assert path.read_text() == expected + "\n"  # read while the stream is still open
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.ERROR, expected)]


def test_a_closed_stderr_does_not_break_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stream = (tmp_path / "closed.log").open("w")
    stream.close()
    monkeypatch.setattr(sys, "stderr", stream)
    warn_bad_configuration(ConfigError("x", "namespace"))  # no exception


def test_unknown_metric_groups_are_listed_with_the_known_ones() -> None:
    known = groups()
    assert len(known) > 1
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_DISABLE": "nope, zzz"})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_DISABLE='nope, zzz': unknown metric group(s) 'nope', 'zzz'; groups: {', '.join(known)}"
    )
    assert caught.value.setting == "NETAUTO_STATSD_DISABLE"


def test_the_plain_transport_refuses_a_unix_socket() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_TRANSPORT": "statsd", "DD_DOGSTATSD_URL": "unix:///run/dsd.socket"})
    assert str(caught.value) == (
        "NETAUTO_STATSD_TRANSPORT='statsd': transport 'statsd' sends UDP only, not to a unix socket"
    )
    assert caught.value.setting == "NETAUTO_STATSD_TRANSPORT"
    assert from_env({"DD_DOGSTATSD_URL": "unix:///run/dsd.socket"}).socket_path == "unix:///run/dsd.socket"
