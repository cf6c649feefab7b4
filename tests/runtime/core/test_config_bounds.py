"""The documented ranges of the settings, at their exact ends, and the messages of their refusals.

Written for mutants of ``netauto_statsd.config`` that survived the mutation run
(docs/testing.md, "Mutation testing"): each end of a range is accepted and the
value just beyond it refused with the exact message naming the variable; a dotted
namespace is read from its variable.
"""

from __future__ import annotations

import pytest

from netauto_statsd.config import ConfigError, Settings, from_env


@pytest.mark.parametrize("raw", ["64", "65000"])
def test_max_packet_accepts_both_ends_of_its_range(raw: str) -> None:
    assert from_env({"NETAUTO_STATSD_MAX_PACKET": raw}).max_packet == int(raw)


@pytest.mark.parametrize("raw", ["63", "65001"])
def test_max_packet_just_beyond_its_range_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_MAX_PACKET": raw})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_MAX_PACKET='{raw}': max_packet must be within 64..65000 bytes, got {raw}"
    )
    assert caught.value.setting == "NETAUTO_STATSD_MAX_PACKET"


@pytest.mark.parametrize(("raw", "seconds"), [("0.01", 0.01), ("60", 60.0)])
def test_flush_interval_accepts_both_ends_of_its_range(raw: str, seconds: float) -> None:
    assert from_env({"NETAUTO_STATSD_FLUSH_INTERVAL": raw}).flush_interval == seconds


@pytest.mark.parametrize(("raw", "shown"), [("0.0099", "0.0099"), ("60.001", "60.001")])
def test_flush_interval_just_beyond_its_range_is_refused_naming_the_variable(raw: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_FLUSH_INTERVAL": raw})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_FLUSH_INTERVAL='{raw}': flush_interval must be within 0.01..60 s, got {shown}"
    )


def test_an_unknown_transport_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_TRANSPORT": "carrier-pigeon"})
    assert str(caught.value) == (
        "NETAUTO_STATSD_TRANSPORT='carrier-pigeon': "
        "transport must be one of ('dogstatsd', 'statsd'), got 'carrier-pigeon'"
    )
    with pytest.raises(ConfigError) as caught:
        Settings(transport="udp")
    assert (str(caught.value), caught.value.setting) == (
        "transport must be one of ('dogstatsd', 'statsd'), got 'udp'",
        "transport",
    )


@pytest.mark.parametrize("namespace", ["acme", "acme.netauto", "a.b_c.d9"])
def test_a_dotted_namespace_is_read_from_its_variable(namespace: str) -> None:
    assert from_env({"NETAUTO_STATSD_NAMESPACE": namespace}).namespace == namespace


@pytest.mark.parametrize("namespace", ["acme.", ".acme", "acme..netauto", "acme.9lives", "acme net"])
def test_a_namespace_with_an_empty_or_non_identifier_part_is_refused(namespace: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_NAMESPACE": namespace})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_NAMESPACE={namespace!r}: namespace must be dotted identifiers, got {namespace!r}"
    )


@pytest.mark.parametrize("raw", ["0", "10000", "10000000000"])
def test_pace_rate_accepts_zero_and_both_ends_of_its_range(raw: str) -> None:
    assert from_env({"NETAUTO_STATSD_PACE_RATE": raw}).pace_rate == int(raw)


@pytest.mark.parametrize("raw", ["9999", "10000000001"])
def test_pace_rate_just_beyond_its_range_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_PACE_RATE": raw})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_PACE_RATE='{raw}': "
        f"pace_rate must be 0 (no pacing) or within 10000..10000000000 bytes/s, got {raw}"
    )
    assert caught.value.setting == "NETAUTO_STATSD_PACE_RATE"


@pytest.mark.parametrize("raw", ["4096", "1073741824"])
def test_pace_burst_accepts_both_ends_of_its_range(raw: str) -> None:
    assert from_env({"NETAUTO_STATSD_PACE_BURST": raw}).pace_burst == int(raw)


@pytest.mark.parametrize("raw", ["4095", "1073741825"])
def test_pace_burst_just_beyond_its_range_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"NETAUTO_STATSD_PACE_BURST": raw})
    assert str(caught.value) == (
        f"NETAUTO_STATSD_PACE_BURST='{raw}': pace_burst must be within 4096..1073741824 bytes, got {raw}"
    )
    assert caught.value.setting == "NETAUTO_STATSD_PACE_BURST"


@pytest.mark.parametrize("port", [1, 65535])
def test_settings_made_directly_accept_both_ends_of_the_port_range(port: int) -> None:
    assert Settings(port=port).address == ("localhost", port)


@pytest.mark.parametrize("port", [0, 65536, "9125"])
def test_settings_made_directly_refuse_a_port_beyond_the_range_or_not_a_number(port: object) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(port=port)  # type: ignore[arg-type]
    assert (str(caught.value), caught.value.setting) == (f"port must be within 1..65535, got {port!r}", "port")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "NETAUTO_STATSD_NAMESPACE",
            "NETAUTO_STATSD_NAMESPACE.",
            "namespace must be dotted identifiers, got 'NETAUTO_STATSD_NAMESPACE.'",
        ),
        (
            "NETAUTO_STATSD_DISABLE",
            "NETAUTO_STATSD_DISABLE",
            "unknown metric group(s) 'NETAUTO_STATSD_DISABLE'; groups: ",
        ),
    ],
)
def test_a_value_that_contains_its_variables_name_is_still_named_by_the_variable(
    variable: str, value: str, message: str
) -> None:
    """The error names the variable even when the refused value happens to spell it (it used to be left as is)."""
    with pytest.raises(ConfigError) as caught:
        from_env({variable: value})
    assert str(caught.value).startswith(f"{variable}={value!r}: {message}")
    assert caught.value.setting == variable
