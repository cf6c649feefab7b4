"""``DogStatsdLines`` writes, byte for byte, what datadog's client writes - in every case, not only ours.

The UDP path serialises the lines itself; the reference is datadog's ``DogStatsd``
client sending the same metric to a real unix socket. Cases the emitter never
produces are held too, because the serialiser's promise is the client's text: no
namespace, no constant tags, no tags at all, tag values with characters the client
replaces (a space, ``|``, ``#``, ``,``). Also: the cache of tag texts stays within
its bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.wire.base import Batch, DogStatsdLines
from tests.runtime.core.test_wire_paths import UnixSink
from tests.runtime.core.wire import split_lines

PAIRS = [(), (("site", "par1"), ("protocol", "ssh")), (("site", "par 1|a"), ("protocol", "s#h,x"))]
CONSTANT = [[], ["env:dev", "service:netauto"], ["env:a b", "service:x|y"]]


def _client_lines(
    path: Path, namespace: str, constant: list[str], calls: list[tuple[str, str, list[str]]]
) -> list[str]:
    """What datadog's client sends for ``calls`` (method, value, tags), read from a real unix socket."""
    from datadog.dogstatsd.base import DogStatsd

    sink = UnixSink(path)
    client = DogStatsd(
        socket_path=f"unix://{path}",
        namespace=namespace or None,
        constant_tags=constant,
        disable_telemetry=True,
        origin_detection_enabled=False,
    )
    client.constant_tags = list(constant)  # the environment's tags aside, as the transport does
    try:
        for method, value, tags in calls:
            getattr(client, method)("runner.start", value, tags=tags)
    finally:
        client.close_socket()
        datagrams = sink.drain()
        sink.sock.close()
    return split_lines(datagrams)


@pytest.mark.parametrize("pairs", PAIRS, ids=["no-tags", "tags", "unsafe-tags"])
@pytest.mark.parametrize("constant", CONSTANT, ids=["no-constant", "constant", "unsafe-constant"])
@pytest.mark.parametrize("namespace", ["netauto", ""])
def test_the_serialiser_writes_the_clients_text(
    tmp_path: Path, namespace: str, constant: list[str], pairs: tuple[tuple[str, str], ...]
) -> None:
    metric = get("runner.start")
    batch = Batch()
    batch.counters[(metric, pairs)] = 3
    batch.gauges[(metric, pairs)] = -2.5
    batch.histograms[(metric, pairs)] = [0.5]
    tags = [f"{k}:{v}" for k, v in pairs]
    expected = _client_lines(
        tmp_path / "dsd.socket",
        namespace,
        constant,
        [("count", "3", tags), ("gauge", "0", tags), ("gauge", "-2.5", tags), ("histogram", "0.5", tags)],
    )
    lines = list(DogStatsdLines(namespace, constant, 1432, True).lines(batch))
    assert [line for line, _ in lines] == expected
    assert [count for _, count in lines] == [1, 0, 1, 1]


def test_the_tag_text_cache_is_emptied_past_its_bound() -> None:
    """A context's tag text is built once and kept (the same object at every flush); at most
    ``MAX_CACHED`` contexts' texts are kept, the next one empties the cache first."""
    serialiser = DogStatsdLines("netauto", ["env:dev", "service:netauto"], 1432, True)
    first = serialiser.tags((("site", "par1"),))
    assert serialiser.tags((("site", "par1"),)) is first
    serialiser._tags.clear()
    for i in range(DogStatsdLines.MAX_CACHED):
        serialiser.tags((("site", f"s{i}"),))
    assert len(serialiser._tags) == DogStatsdLines.MAX_CACHED
    assert serialiser.tags((("site", "one-more"),)) == "|#site:one-more,env:dev,service:netauto"
    assert len(serialiser._tags) == 1
