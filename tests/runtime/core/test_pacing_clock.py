"""The pacer's clock: how long it waits, and how it counts its pauses.

``test_pacing.py`` proves the pacer's effect (large flushes arrive complete, small
ones never wait). These pin its arithmetic: a token bucket's refill and the wait it
asks for, exactly where no clock is involved, and with real sleeps otherwise. A
real sleep is never shorter than asked; where a bound from above is needed it is
several times the expected wait, so a loaded machine cannot fail it. No test here
asserts how fast anything is.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from netauto_statsd.wire.pacing import FULL_COST, Pacer, _Bucket, kernel_cost
from netauto_statsd.wire.receiver import ReceiverProbe
from tests.support import udp_socket_drops

FULL = 1432
COST = kernel_cost(FULL)  # 2368


def test_the_wait_for_a_level_is_the_missing_amount_at_the_refill_rate() -> None:
    bucket = _Bucket(1000, 100.0)
    bucket.level = 400
    assert bucket.seconds_until(900) == 5.0
    assert bucket.seconds_until(5000) == 6.0  # never more than a full bucket
    assert bucket.seconds_until(400) == 0.0  # already there
    assert bucket.seconds_until(100) == 0.0


def test_a_bucket_starts_full_and_refills_with_the_time_passed_up_to_its_size() -> None:
    bucket = _Bucket(1e9, 100.0)
    assert bucket.level == 1e9
    bucket.level = 0
    bucket.stamp -= 2.0  # as if two seconds had passed since the last refill
    bucket.refill()
    assert 200 <= bucket.level < 200 + 100 * 60  # 100 per second, whatever the load
    refilled = bucket.level
    bucket.refill()
    assert refilled <= bucket.level < refilled + 100 * 60  # the stamp moved on: not two seconds again
    bucket.stamp -= 1e9
    bucket.refill()
    assert bucket.level == 1e9  # capped at the size


def test_a_datagram_that_exactly_fits_the_burst_does_not_wait() -> None:
    pacer = Pacer(burst=COST, rate=1_000_000)
    assert pacer.admit(FULL)
    assert (pacer.pauses, pacer.slept) == (0, 0.0)


def test_the_fixed_bucket_waits_until_a_quarter_of_the_burst_is_back_and_counts_each_pause() -> None:
    """100,000-byte burst at 50,000 bytes/s: 42 full datagrams at once, then a wait for 25,000 bytes."""
    burst, rate = 100_000, 50_000
    pacer = Pacer(burst=burst, rate=rate)
    assert all(pacer.admit(FULL) for _ in range(burst // COST))  # 42: the bucket only fills up meanwhile
    assert pacer.pauses == 0
    for _ in range(10):  # the next one pauses (a few more if this machine stalled for a while)
        assert pacer.admit(FULL)
        if pacer.pauses:
            break
    assert pacer.pauses == 1
    first = pacer.slept
    # it had less than a datagram's cost left and waited for a quarter of the burst:
    # at least (25,000 - 2,368) / 50,000 s; never for a full bucket (about 2 s)
    assert (burst / 4 - COST) / rate <= first < burst / rate * 0.75
    # the quarter lasts about 9 datagrams more, then one more pause of at least as long
    for _ in range(20):
        assert pacer.admit(FULL)
        if pacer.pauses > 1:
            break
    assert pacer.pauses == 2
    assert pacer.slept >= first + (burst / 4 - COST) / rate  # the seconds slept add up


def test_the_pause_is_measured_by_the_clock_not_assumed() -> None:
    pacer = Pacer(burst=COST, rate=10_000)
    start = time.perf_counter()
    assert pacer.admit(FULL) and pacer.admit(FULL)  # the second waits until its own cost is back
    elapsed = time.perf_counter() - start
    assert pacer.pauses == 1
    assert elapsed >= COST / 10_000  # 0.24 s: the bytes it lacked at 10,000 bytes/s
    assert 0 < pacer.slept <= elapsed


def test_the_exporters_packet_queue_allows_its_size_at_once_then_refills_at_the_rate() -> None:
    """A queue of 2 datagrams refilled at 4 full datagrams/s: 2 at once, then a pause of ~0.5 s per 2."""
    pacer = Pacer(burst=1 << 30, rate=FULL_COST * 4, queue=2)  # bytes never run out here
    assert pacer.admit(64) and pacer.admit(64)
    assert pacer.pauses == 0
    assert pacer.admit(64)
    assert pacer.pauses == 1
    assert pacer.slept >= 0.25  # it waited for a full queue: at least (2 - 1) / 4 s
    assert pacer.admit(64)  # the queue refilled to 2: this one needs no pause
    assert pacer.pauses == 1
    assert pacer.admit(64)
    assert pacer.pauses == 2


# ------------------------------------------------------------ an observed receiver
def _receiver(rcvbuf: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf // 2)  # the kernel doubles it
    sock.bind(("127.0.0.1", 0))
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf
    return sock


@pytest.mark.parametrize(
    ("rcvbuf", "per_look"),
    [
        (1 << 20, 27),  # large: a sixteenth of the room (CHUNK_SHARE) = 64 KiB = 27 full datagrams
        (1 << 18, 13),  # roomy: 32 KiB per look (CHUNK_BYTES; a sixteenth would be 16 KiB) = 13 full datagrams
        (65536, 6),  # (64 KiB - 8 KiB margin) / 4 = 14,336 bytes = 6 full datagrams
        (46080, 4),  # (46,080 - 8,192) / 4 = 9,472: exactly room for 4, enough not to wait
    ],
)
def test_each_look_at_the_receiver_allows_a_quarter_of_its_room_at_most_32_kib_or_a_sixteenth(
    rcvbuf: int, per_look: int
) -> None:
    with _receiver(rcvbuf) as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        try:
            pacer = Pacer(burst=COST, rate=1_000_000, probe=probe)  # the burst is never used while observed
            for look in (1, 2, 3):
                for _ in range(per_look):
                    assert pacer.admit(FULL)
                    assert pacer.probes == look
            assert pacer.admit(FULL)
            assert pacer.probes == 4
            assert (pacer.pauses, pacer.refused) == (0, 0)  # nothing was sent: the receiver stays empty
        finally:
            probe.close()


def _fill(receiver: socket.socket) -> None:
    """Send full datagrams until the kernel drops them: the receiver's buffer is full."""
    port = receiver.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(200):
            sender.sendto(b"x" * FULL, ("127.0.0.1", port))
    assert udp_socket_drops(port) > 0


def test_a_receiver_that_stays_full_is_stalled_after_a_quarter_second_of_doubling_waits() -> None:
    """Waits of 0.5, 1, 2, 4 ms then 8 ms while the room does not grow: 35 waits reach 0.25 s, then "stalled"."""
    with _receiver(65536) as receiver:
        _fill(receiver)
        probe = ReceiverProbe(receiver.getsockname()[1])
        try:
            pacer = Pacer(burst=COST, rate=1_000_000, probe=probe)
            assert pacer.admit(FULL) is False
            assert (pacer.pauses, pacer.probes, pacer.refused) == (35, 36, 1)
            assert pacer.slept >= 0.25
            # stalled: the next datagram is refused at once, after one look
            assert pacer.admit(FULL) is False
            assert (pacer.pauses, pacer.probes, pacer.refused) == (35, 37, 2)
            # the receiver reads a little: room for one datagram is enough to resume a stalled receiver
            receiver.setblocking(False)
            while (room := probe.room()) is not None and (room - 8192) // 4 < COST:
                receiver.recv(65535)
            assert room is not None and (room - 8192) // 4 < 4 * COST  # less than a not-stalled pacer waits for
            assert pacer.admit(FULL) is True
            assert (pacer.pauses, pacer.refused) == (35, 2)
        finally:
            probe.close()


def test_a_full_receiver_that_is_not_stalled_waits_for_room_for_four_datagrams() -> None:
    """Room for one datagram is not enough before the stall: the pacer waits (and here, stalls)."""
    with _receiver(65536) as receiver:
        _fill(receiver)
        probe = ReceiverProbe(receiver.getsockname()[1])
        try:
            receiver.setblocking(False)
            while (room := probe.room()) is not None and (room - 8192) // 4 < COST:
                receiver.recv(65535)
            pacer = Pacer(burst=COST, rate=1_000_000, probe=probe)
            assert pacer.admit(FULL) is False  # nobody reads any more: no room for four, stalled
            assert (pacer.pauses, pacer.refused) == (35, 1)
        finally:
            probe.close()


def test_a_stalled_receiver_resumes_with_room_for_exactly_one_datagram() -> None:
    """(17,664 - 8,192 margin) / 4 = 2,368: an emptied buffer of 17,664 bytes has room for exactly one full datagram."""
    with _receiver(17664) as receiver:
        _fill(receiver)
        probe = ReceiverProbe(receiver.getsockname()[1])
        try:
            pacer = Pacer(burst=COST, rate=1_000_000, probe=probe)
            assert pacer.admit(FULL) is False  # stalled
            receiver.setblocking(False)
            while True:  # the exporter reads everything
                try:
                    receiver.recv(65535)
                except BlockingIOError:
                    break
            assert probe.room() == 17664
            assert pacer.admit(FULL) is True
            assert (pacer.pauses, pacer.refused) == (35, 1)
        finally:
            probe.close()


def test_a_receiver_seen_reading_during_the_wait_gets_a_fresh_quarter_second() -> None:
    """The room grows during the wait (the exporter read 8 datagrams once): the stall clock restarts.

    UDP frees receive memory lazily (in steps of a quarter of the buffer), so the exporter reads
    8 full datagrams (18 KB) at once, after the pacer's sixth pause, then stops: not enough room for four
    datagrams, so the pacer waits a full 0.25 s more after seeing it read, then gives up. A
    receiver that never reads gives up after 35 waits (the test above).
    """
    with _receiver(65536) as receiver:
        _fill(receiver)
        receiver.setblocking(False)
        probe = ReceiverProbe(receiver.getsockname()[1])

        pacer = Pacer(burst=COST, rate=1_000_000, probe=probe)

        def exporter() -> None:
            # read once the pacer has waited 6 times (23.5 ms of its quarter second; a fixed
            # 20 ms delay could read before its first look on a loaded machine: no growth seen)
            deadline = time.monotonic() + 10
            while pacer.pauses < 6 and time.monotonic() < deadline:
                time.sleep(0.001)
            for _ in range(8):
                receiver.recv(65535)

        reader = threading.Thread(target=exporter, daemon=True)
        try:
            reader.start()
            assert pacer.admit(64) is False
            assert pacer.pauses > 35 and pacer.refused == 1
            assert not reader.is_alive()
        finally:
            reader.join(5)
            probe.close()
