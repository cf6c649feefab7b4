"""How a call is checked against the catalog: the reason each refusal is counted under, and strict messages.

``client.rejected{reason}`` is what an operator's panel and alert read, so each way a
call can be refused is pinned to its reason in production, and to its message in
strict mode (where the message is what the developer reads). Real emitters, a real
loopback UDP socket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from netauto_statsd.catalog import CatalogError, throughput
from netauto_statsd.emitter import Emitter
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
MakeEmitter = Callable[..., Emitter]


class Untextable:
    """A tag value whose text cannot be made."""

    def __str__(self) -> str:
        raise ValueError("no text")


def _counted(emitter: Emitter, sink: UdpSink, name: str, key: str) -> dict[str, float]:
    emitter.flush()
    lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    return {line.tag_dict[key]: line.values[0] for line in lines if line.name == f"netauto.{name}"}


def test_each_refusal_is_counted_under_its_reason(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, strict=False)
    emitter.increment("run.created", tags=[("site", "par1")])  # type: ignore[arg-type]  # not a mapping
    emitter.increment("run.created", tags={"site": Untextable(), "protocol": "ssh"})
    emitter.increment("run.created", tags={**RUN, "le": "1"})
    emitter.increment("no.such.metric")
    emitter.histogram("run.created", 1, tags=RUN)  # a counter used as a histogram
    assert _counted(emitter, sink, "client.rejected", "reason") == {
        "unknown_tag": 2,
        "bad_value": 1,
        "unknown_metric": 2,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda e: e.increment("run.created", tags=[("site", "x")]),
            r"tags of 'run\.created' must be a mapping, got \[",
        ),
        (
            lambda e: e.increment("run.created", tags={"site": Untextable(), "protocol": "ssh"}),
            r"tag 'site' value <tests\.runtime\.core\.test_resolution\.Untextable object at .* has no text: ValueError",
        ),
        (
            lambda e: e.increment("run.created", tags={**RUN, "le": "1"}),
            r"tag 'le' is forbidden for 'run\.created'; allowed: site, protocol$",
        ),
        (
            lambda e: e.increment("run.created", tags={**RUN, "region": "eu"}),
            r"tag 'region' is not declared for 'run\.created'; allowed: site, protocol$",
        ),
        (
            lambda e: e.increment("client.send_failures", tags={"site": "x"}),
            r"tag 'site' is not declared for 'client\.send_failures'; allowed: none$",
        ),
        (lambda e: e.increment("run.created", tags={"site": "x"}), r"'run\.created' needs tag 'protocol'"),
    ],
    ids=["not a mapping", "no text", "forbidden", "undeclared", "no tags at all", "missing"],
)
def test_strict_messages_say_what_is_wrong(
    make_emitter: MakeEmitter, call: Callable[[Emitter], None], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        call(make_emitter())


def test_a_call_over_the_cap_with_an_unexpected_value_counts_both(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Folded by the cardinality cap *and* carrying a value outside the allowed set: two counters, not one."""
    emitter = make_emitter(sink.port, strict=False)
    for i in range(200):
        emitter.increment("runner.error", tags={**RUN, "error": f"E{i}"})  # fills the cap of 200
    emitter.increment("runner.error", tags={"site": "par1", "protocol": "pigeon", "error": "E-new"})
    assert _counted(emitter, sink, "client.overflow", "metric") == {"runner_error": 1}
    emitter.increment("runner.error", tags={"site": "par1", "protocol": "pigeon", "error": "E-newer"})
    assert _counted(emitter, sink, "client.unexpected_value", "metric") == {"runner_error": 1}


def test_odd_names_and_missing_tags_are_refusals_not_internal_errors(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """An unhashable name is an unknown metric; no tags at all on a tagged metric folds every tag to ``other``."""
    emitter = make_emitter(sink.port, strict=False)
    emitter.increment(["run.created"])  # type: ignore[arg-type]
    emitter.increment("run.created")
    assert emitter.stats()["internal_errors"] == 0
    assert _counted(emitter, sink, "client.rejected", "reason") == {"unknown_metric": 1}
    emitter.increment("run.created")
    assert _counted(emitter, sink, "run.created", "site") == {"other": 1}


def test_a_look_alike_metric_is_named_in_strict_mode(make_emitter: MakeEmitter) -> None:
    fake = dataclasses.replace(throughput.RUNS_CREATED, help="not the declared one")
    with pytest.raises(CatalogError, match=r"metric 'run\.created' is not declared \(use counter\(\)/\.\.\.\)"):
        make_emitter().count("run.created", fake, 1, RUN)
