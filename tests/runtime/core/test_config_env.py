"""Reading settings from the environment: defaults, switches, fallbacks and refusals.

Written for mutants of ``netauto_statsd.config`` that survived the suite
(docs/testing.md): the defaults of ``from_env`` and the parsing of its switches
were only ever exercised through an emitter, never compared value by value.
"""

from __future__ import annotations

import pytest

from netauto_statsd.config import ConfigError, Settings, exporter_version, from_env


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = from_env({})
    assert settings == Settings()
    assert (settings.env, settings.service, settings.namespace) == ("dev", "netauto", "netauto")
    assert (settings.flush_interval, settings.max_packet, settings.transport) == (0.5, 1432, "dogstatsd")
    assert (settings.strict, settings.disabled, settings.exporter_compat) == (False, False, "")


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "Yes", "on"])
def test_switches_accept_the_true_words_in_any_case(value: str) -> None:
    settings = from_env({"NETAUTO_STATSD_STRICT": value, "DD_DOGSTATSD_DISABLE": value})
    assert settings.strict and settings.disabled


@pytest.mark.parametrize("value", ["0", "", "no", "off", "false"])
def test_switches_are_off_otherwise(value: str) -> None:
    settings = from_env({"NETAUTO_STATSD_STRICT": value, "DD_DOGSTATSD_DISABLE": value})
    assert not settings.strict and not settings.disabled


def test_datadog_variables_are_fallbacks_ours_win() -> None:
    assert from_env({"DD_ENV": "prod", "DD_SERVICE": "api"}).env == "prod"
    assert from_env({"DD_ENV": "prod", "DD_SERVICE": "api"}).service == "api"
    both = from_env({"DD_ENV": "prod", "NETAUTO_STATSD_ENV": "lab", "NETAUTO_STATSD_SERVICE": "runner"})
    assert (both.env, both.service) == ("lab", "runner")


def test_numbers_and_transport_are_read() -> None:
    settings = from_env(
        {
            "NETAUTO_STATSD_FLUSH_INTERVAL": "2",
            "NETAUTO_STATSD_MAX_PACKET": "8000",
            "NETAUTO_STATSD_TRANSPORT": "StatsD",
        }
    )
    assert (settings.flush_interval, settings.max_packet, settings.transport) == (2.0, 8000, "statsd")


def test_an_empty_number_means_the_default() -> None:
    settings = from_env({"NETAUTO_STATSD_FLUSH_INTERVAL": "", "NETAUTO_STATSD_MAX_PACKET": ""})
    assert (settings.flush_interval, settings.max_packet) == (0.5, 1432)


@pytest.mark.parametrize("raw", ["2000.7", "lots", "1e3"])
def test_max_packet_must_be_a_whole_number(raw: str) -> None:
    with pytest.raises(ConfigError, match=rf"NETAUTO_STATSD_MAX_PACKET='{raw}' is not a number"):
        from_env({"NETAUTO_STATSD_MAX_PACKET": raw})


def test_exporter_versions_are_three_numbers() -> None:
    assert exporter_version("0.26") == (0, 26, 0)
    assert exporter_version("v1.2.3") == (1, 2, 3)
    assert exporter_version(" v0.27 ") == (0, 27, 0)
