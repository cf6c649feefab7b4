"""Bad configuration is never silent: configure() raises ConfigError naming the variable,
implicit first use warns once on stderr (even without logging set up) and counts the loss."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from netauto_statsd.config import ConfigError, Settings, from_env, parse_bool
from netauto_statsd.emitter import configure, get_emitter
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

RUN = {"site": "par1", "protocol": "ssh"}

#: (variable, value) pairs that cannot be used; each must be named in the error.
BAD = [
    ("NETAUTO_STATSD_FLUSH_INTERVAL", "abc"),
    ("NETAUTO_STATSD_FLUSH_INTERVAL", "-1"),
    ("NETAUTO_STATSD_MAX_PACKET", "big"),
    ("NETAUTO_STATSD_STRICT", "y"),
    ("NETAUTO_STATSD_STRICT", "strict"),
    ("DD_DOGSTATSD_DISABLE", "maybe"),
    ("DD_DOGSTATSD_URL", "udp://127.0.0.1"),  # no port: datadog would fall back to 8125
    ("DD_DOGSTATSD_URL", "udp://:9125"),  # no host
    ("DD_DOGSTATSD_URL", "udp://127.0.0.1:99999"),
    ("DD_DOGSTATSD_URL", "tcp://127.0.0.1:9125"),  # bad scheme
    ("DD_DOGSTATSD_URL", "127.0.0.1:9125"),  # no scheme
    ("DD_DOGSTATSD_URL", "udp://[::1"),
    ("DD_DOGSTATSD_PORT", "abc"),
    ("DD_DOGSTATSD_PORT", "99999"),
    ("DD_DOGSTATSD_PORT", "0"),
    ("NETAUTO_STATSD_TRANSPORT", "carrier-pigeon"),
]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_configure_raises_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key) as caught:
        configure()
    assert caught.value.setting == key
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_implicit_use_warns_once_on_stderr_counts_the_loss_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    emitter = get_emitter()  # first use, as an app would: no exception
    for _ in range(3):
        emitter.increment("run.created", tags=RUN)
    emitter.histogram("runner.duration", 0.5, tags={**RUN, "status": "ok"})
    assert emitter.flush() == 2
    stats = emitter.stats()
    assert stats["samples_failed"] == 2 and stats["packets_failed"] == 1
    assert get_emitter() is emitter  # still one emitter, so still one warning
    err = capsys.readouterr().err
    assert err.count("netauto_statsd: bad configuration") == 1
    assert key in err


def test_the_warning_reaches_stderr_in_an_app_that_never_configured_logging() -> None:
    """A real child process: no logging.basicConfig, no handler - the warning still shows, once."""
    code = textwrap.dedent(
        """
        import netauto_statsd
        for _ in range(100):
            netauto_statsd.run_created(site="par1", protocol="ssh")
        print(netauto_statsd.flush(), netauto_statsd.stats()["samples_failed"])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))}
    env["NETAUTO_STATSD_FLUSH_INTERVAL"] = "abc"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]  # 100 increments aggregate into 1 sample, counted as lost
    lines = [line for line in done.stderr.splitlines() if "netauto_statsd" in line]
    assert len(lines) == 1 and "NETAUTO_STATSD_FLUSH_INTERVAL='abc'" in lines[0], done.stderr


@pytest.mark.parametrize("word", ["1", "true", "YES", " on ", "True"])
def test_true_words(word: str) -> None:
    assert parse_bool({"X": word}, "X") is True
    assert from_env({"NETAUTO_STATSD_STRICT": word}).strict is True


@pytest.mark.parametrize("word", ["0", "false", "No", "OFF", ""])
def test_false_words(word: str) -> None:
    assert parse_bool({"X": word}, "X", default=True) is (word == "")  # empty keeps the default
    assert from_env({"NETAUTO_STATSD_STRICT": word}).strict is False


@pytest.mark.parametrize(
    ("env", "host", "port", "socket_path"),
    [
        ({}, None, None, None),
        ({"DD_AGENT_HOST": "exporter", "DD_DOGSTATSD_PORT": "9125"}, "exporter", 9125, None),
        ({"DD_DOGSTATSD_URL": "udp://exporter:9125", "DD_DOGSTATSD_PORT": "1"}, "exporter", 9125, None),
        ({"DD_DOGSTATSD_URL": "udp://[::1]:9125"}, "::1", 9125, None),
        ({"DD_DOGSTATSD_URL": "unix:///run/dsd.socket"}, None, None, "unix:///run/dsd.socket"),
    ],
)
def test_destination_is_resolved_in_one_place(
    env: dict[str, str], host: str | None, port: int | None, socket_path: str | None
) -> None:
    settings = from_env(env)
    assert (settings.host, settings.port, settings.socket_path) == (host, port, socket_path)
    assert settings.address == (host or "localhost", port or 8125)


def test_statsd_transport_without_the_statsd_package_is_an_error() -> None:
    """In a child whose import path hides pystatsd: configure() raises, implicit use warns and counts."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["statsd"] = None  # "import statsd" now fails, as if it were not installed
        import netauto_statsd
        from netauto_statsd.config import ConfigError
        try:
            netauto_statsd.configure()
        except ConfigError as exc:
            print("raised", exc.setting)
        netauto_statsd.emitter.set_emitter(None)
        netauto_statsd.run_created(site="par1", protocol="ssh")
        netauto_statsd.flush()
        print("failed", netauto_statsd.stats()["samples_failed"])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))}
    env["NETAUTO_STATSD_TRANSPORT"] = "statsd"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["raised NETAUTO_STATSD_TRANSPORT", "failed 1"]
    assert done.stderr.count("needs the statsd package") == 1


def test_a_good_environment_still_sends(monkeypatch: pytest.MonkeyPatch, sink: UdpSink) -> None:
    monkeypatch.setenv("DD_DOGSTATSD_URL", f"udp://127.0.0.1:{sink.port}")
    monkeypatch.setenv("NETAUTO_STATSD_STRICT", "yes")
    emitter = get_emitter()
    assert emitter.settings.strict
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    [line] = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    assert line.name == "netauto.run.created" and emitter.stats()["samples_failed"] == 0


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="port"):
        Settings(port=70000)
