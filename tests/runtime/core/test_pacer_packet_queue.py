"""The pacer's allowance for the exporter's packet queue at its smallest: one datagram.

Written for a mutant of ``netauto_statsd.wire.pacing`` that survived the suite
(docs/testing.md, "Mutation testing"): with room for one datagram the allowance is
exactly 1, and that datagram must go without a pause. Pauses are counted, never timed.
"""

from __future__ import annotations

from netauto_statsd.wire.pacing import FULL_COST, Pacer, kernel_cost

FULL = 1432
COST = kernel_cost(FULL)


def test_a_packet_queue_of_one_datagram_lets_it_go_at_once_then_waits_for_the_next() -> None:
    # two full datagrams a second: refilling the spent allowance takes half a second, so the second call waits
    pacer = Pacer(burst=10 * COST, rate=2 * FULL_COST, queue=1)  # the byte allowance is never the limit here
    assert pacer.admit(FULL)
    assert (pacer.pauses, pacer.slept) == (0, 0.0)  # a full queue allowance of exactly one datagram
    assert pacer.admit(FULL)
    assert pacer.pauses == 1  # the queue was spent: it waited for one datagram's refill (half a second)
    assert pacer.slept > 0
