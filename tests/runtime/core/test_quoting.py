"""How caller input is quoted in error messages and which values count as numbers (``emitter.values``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.values import MAX_MAGNITUDE, QUOTE_LIMIT, short

RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
MakeEmitter = Callable[..., Emitter]


class Unprintable:
    def __repr__(self) -> str:
        raise ValueError("no repr")


def test_a_quote_is_cut_to_the_limit_with_an_ellipsis() -> None:
    fits = "x" * (QUOTE_LIMIT - 2)  # with its quotes, exactly the limit
    assert short(fits) == repr(fits)
    assert short("y" * 1000) == "'" + "y" * (QUOTE_LIMIT - 4) + "..."
    assert short(b"z" * 1000) == "b'" + "z" * (QUOTE_LIMIT - 5) + "..."
    assert short(list(range(1000))).endswith("...") and len(short(list(range(1000)))) == QUOTE_LIMIT


def test_an_unprintable_value_is_named_by_its_type() -> None:
    assert short(Unprintable()) == "<unprintable Unprintable: ValueError>"


def test_a_batch_of_the_largest_finite_values_is_accepted(make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(disabled=True)
    emitter.histogram_many("runner.duration", [MAX_MAGNITUDE, -MAX_MAGNITUDE], tags=RUN_OK)
    assert emitter.stats()["accepted"] == 2 and emitter.stats()["rejected"] == 0


def test_a_counter_going_down_says_so_with_the_value(make_emitter: MakeEmitter) -> None:
    with pytest.raises(CatalogError, match=r"counters cannot go down \(got -2\.5\)"):
        make_emitter().increment("run.created", -2.5, tags={"site": "par1", "protocol": "ssh"})
    with pytest.raises(CatalogError, match=r"value must be a finite int or float, got inf$"):
        make_emitter().increment("run.created", float("inf"), tags={"site": "par1", "protocol": "ssh"})
