"""The live proof's verdict in-process: what it blames on the mapping, and what on traffic lost on the way.

`judge` reads what the proof sent, the exporter's ``/metrics`` (parsed as the
proof parses it), the exporter's own counters and the losses the proof saw: the
client's send failures, the kernel's drops at the exporter's socket, the
exporter's own queue drops. A context that arrived short after such a loss is
not a mapping finding. The end-to-end cases (real exporters losing the proof's
traffic) are in ``test_check_inproc_live_losses.py``.
"""

from __future__ import annotations

from netauto_statsd.tooling.live_check import (
    LOSS_FIX,
    Expected,
    Readings,
    _wire_fix,
    all_arrived,
    arrived_short,
    judge,
)
from tests.tooling.bridge.appmetrics import APP, HITS, LATENCY, LEVEL, SESSIONS, SIZE
from tests.tooling.bridge.test_check_inproc_live import ENV, LABELS, counter, families, histogram

PLAIN = "check-statsd"
PLAIN_LABELS = LABELS.replace(ENV, PLAIN)
RULE_FIX = (
    f"this rule makes the exporter differ from the contract declared in `{APP}` (name, type, labels, unit): "
    "compare it with `netauto-statsd mapping`"
)
LOST = "traffic was lost on the way to the exporter: "
QUEUE = "statsd_exporter_udp_packet_drops_total"
REJECTED = "statsd_exporter_sample_errors_total"


def level(value: float = 7, labels: str = LABELS) -> str:
    return f"# TYPE app_level gauge\napp_level{{{labels}}} {value}\n"


def hits_in_both(dogstatsd: float, statsd: float) -> str:
    return counter(dogstatsd) + f"app_hits_total{{{PLAIN_LABELS}}} {statsd}\n"


def rejected(count: float) -> str:
    return f'# TYPE {REJECTED} counter\n{REJECTED}{{reason="malformed_value"}} {count}\n'


# ------------------------------------------------------------------ all_arrived (when the wait ends)
def test_the_wait_ends_when_every_context_of_every_wire_landed() -> None:
    sent = {ENV: [Expected(HITS, value=6), Expected(LATENCY, count=5, total=1.0)]}
    assert all_arrived(sent, families(counter(1) + histogram(5, 1.0)))
    assert not all_arrived(sent, families(counter(1) + histogram(4, 1.0)))
    assert not all_arrived(sent, families(histogram(5, 1.0)))
    both = {**sent, PLAIN: [Expected(HITS, value=6)]}
    assert not all_arrived(both, families(counter(1) + histogram(5, 1.0)))
    assert all_arrived(both, families(hits_in_both(1, 1) + histogram(5, 1.0)))


def test_after_rejected_lines_the_wait_ends_without_the_histograms() -> None:
    sent = {ENV: [Expected(HITS, value=6), Expected(LATENCY, count=5, total=1.0)]}
    assert all_arrived(sent, families(counter(1) + rejected(3)))
    assert not all_arrived(sent, families(rejected(3)))  # the counter is not lost to rejected lines
    assert not all_arrived(sent, families(counter(1) + rejected(0)))  # nothing rejected: wait for the histogram


# ------------------------------------------------------------------ arrived_short (what a loss explains)
def test_a_context_arrived_short_when_less_than_sent_landed() -> None:
    latency = Expected(LATENCY, count=5, total=1.0)
    assert arrived_short(latency, {}, ENV)
    assert arrived_short(latency, families(histogram(5, 1.0, labels=PLAIN_LABELS)), ENV)  # another wire's
    assert arrived_short(latency, families(histogram(4, 1.0)), ENV)
    assert not arrived_short(latency, families(histogram(5, 1.0)), ENV)
    assert not arrived_short(latency, families(histogram(6, 1.0)), ENV)
    assert not arrived_short(latency, families(histogram(5, 1000.0)), ENV)  # a wrong scale: all arrived
    hits = Expected(HITS, value=6)
    assert arrived_short(hits, families(counter(5)), ENV)
    assert not arrived_short(hits, families(counter(6)), ENV)
    assert not arrived_short(hits, families(counter(7)), ENV)
    assert arrived_short(hits, families(counter(6, labels=LABELS.replace('"x"', '"y"'))), ENV)  # not its context


def test_a_gauge_is_short_only_when_nothing_arrived() -> None:
    """A gauge is one datagram: it lands with its value or not at all; another value is the mapping's."""
    gauge = Expected(LEVEL, value=7)
    assert arrived_short(gauge, {}, ENV)
    assert not arrived_short(gauge, families(level(3)), ENV)
    assert not arrived_short(gauge, families(level(7)), ENV)


# ------------------------------------------------------------------ judge: the mapping's findings
def test_without_a_loss_what_arrived_short_is_the_mappings() -> None:
    sent = {ENV: [Expected(HITS, value=6), Expected(LEVEL, value=7)]}
    assert judge(sent, Readings(families(counter(5)), {})) == [
        ("[dogstatsd] `app_hits_total` reads 5, sent 6", RULE_FIX, HITS),
        ("[dogstatsd] `app.level` did not produce `app_level`", RULE_FIX, LEVEL),
    ]
    assert judge(sent, Readings(families(counter(6) + level(7)), {"drop_actions": 40.0})) == []


def test_the_exporters_other_counters_are_findings_of_their_own() -> None:
    errors = {"drop_actions": 40.0, REJECTED: 0.0, "statsd_exporter_tag_errors_total": 2.0,
              "statsd_exporter_events_unmapped_total": 1.0, QUEUE: 0.0}  # fmt: skip
    fix = "read the exporter's log; every sample must map cleanly"
    assert judge({}, Readings({}, errors)) == [
        ("the exporter counted 1 in statsd_exporter_events_unmapped_total", fix, None),
        ("the exporter counted 2 in statsd_exporter_tag_errors_total", fix, None),
    ]


# ------------------------------------------------------------------ judge: traffic lost on the way
def test_the_clients_send_failures_excuse_its_own_wire_only() -> None:
    sent = {
        ENV: [Expected(HITS, value=6), Expected(LATENCY, count=5, total=1.995), Expected(LEVEL, value=7)],
        PLAIN: [Expected(HITS, value=6)],
    }
    text = hits_in_both(5, 5) + histogram(5, 1995)
    assert judge(sent, Readings(families(text), {}, failed={"dogstatsd": 3, "statsd": 0})) == [
        (LOST + "[dogstatsd] the client could not send 3 packet(s) (2 context(s) arrived short, not compared with "
         "the mapping: dogstatsd:app.hits, dogstatsd:app.level)", LOSS_FIX, None),
        ("[dogstatsd] `app_latency_seconds` counted 5 observation(s) summing to 1995; sent 5 summing to 1.995",
         RULE_FIX, LATENCY),
        ("[statsd] `app_hits_total` reads 5, sent 6", RULE_FIX, HITS),
    ]  # fmt: skip
    assert LOSS_FIX == (
        "the exporter did not take all of the proof's traffic (a busy machine, or a small `--statsd.read-buffer`): "
        "run check again; nothing here points at the mapping"
    )


def test_the_kernels_drops_at_the_exporters_socket_excuse_every_wire() -> None:
    sent = {ENV: [Expected(HITS, value=6), Expected(LATENCY, count=5, total=1.995)], PLAIN: [Expected(HITS, value=6)]}
    text = hits_in_both(5, 4) + histogram(5, 1995)
    assert judge(sent, Readings(families(text), {}, dropped=12)) == [
        (LOST + "the exporter's socket dropped 12 datagram(s) (its receive buffer was full) (2 context(s) arrived "
         "short, not compared with the mapping: dogstatsd:app.hits, statsd:app.hits)", LOSS_FIX, None),
        ("[dogstatsd] `app_latency_seconds` counted 5 observation(s) summing to 1995; sent 5 summing to 1.995",
         RULE_FIX, LATENCY),
    ]  # fmt: skip


def test_the_exporters_queue_drops_are_a_loss_not_an_error_of_the_mapping() -> None:
    sent = {ENV: [Expected(HITS, value=6)], PLAIN: [Expected(HITS, value=6)]}
    errors = {QUEUE: 4.0, "drop_actions": 1.0}
    assert judge(sent, Readings(families(hits_in_both(6, 2)), errors)) == [
        (LOST + "the exporter dropped 4 packet(s) its queue had no room for (statsd_exporter_udp_packet_drops_total) "
         "(1 context(s) arrived short, not compared with the mapping: statsd:app.hits)", LOSS_FIX, None),
    ]  # fmt: skip


def test_every_loss_is_named_and_a_loss_without_short_contexts_lists_none() -> None:
    sent = {ENV: [Expected(HITS, value=6)], PLAIN: [Expected(HITS, value=6)]}
    got = Readings(families(hits_in_both(6, 6)), {QUEUE: 2.0}, failed={"dogstatsd": 1, "statsd": 5}, dropped=3)
    assert judge(sent, got) == [
        (LOST + "[dogstatsd] the client could not send 1 packet(s); [statsd] the client could not send 5 packet(s); "
         "the exporter's socket dropped 3 datagram(s) (its receive buffer was full); the exporter dropped 2 "
         "packet(s) its queue had no room for (statsd_exporter_udp_packet_drops_total)", LOSS_FIX, None),
    ]  # fmt: skip


def test_a_context_that_arrived_in_full_is_judged_even_after_a_loss() -> None:
    extra = LABELS + ',zone="a"'
    sent = {ENV: [Expected(HITS, value=6), Expected(LEVEL, value=7)]}
    text = counter(labels=extra) + level(7)
    assert judge(sent, Readings(families(text), {}, dropped=1)) == [
        (LOST + "the exporter's socket dropped 1 datagram(s) (its receive buffer was full)", LOSS_FIX, None),
        ("[dogstatsd] `app_hits_total` has labels ['env', 'service', 'view', 'zone'], the catalog declares "
         "['env', 'service', 'view']", RULE_FIX, HITS),
    ]  # fmt: skip


def test_the_short_contexts_listed_are_the_first_four() -> None:
    five = [Expected(m) for m in (HITS, LATENCY, SIZE, LEVEL, SESSIONS)]
    names = "dogstatsd:app.hits, dogstatsd:app.latency, dogstatsd:app.size, dogstatsd:app.level"
    assert judge({ENV: five}, Readings({}, {}, dropped=1))[0][0] == (
        LOST + "the exporter's socket dropped 1 datagram(s) (its receive buffer was full) (5 context(s) arrived "
        f"short, not compared with the mapping: {names}, ...)"
    )
    assert judge({ENV: five[:4]}, Readings({}, {}, dropped=1))[0][0] == (
        LOST + "the exporter's socket dropped 1 datagram(s) (its receive buffer was full) (4 context(s) arrived "
        f"short, not compared with the mapping: {names})"
    )


# ------------------------------------------------------------------ judge: rejected lines
def test_rejected_lines_name_the_histograms_they_lost_and_keep_other_findings() -> None:
    errors = {REJECTED: 5.0, f"{REJECTED}{{reason=malformed_value}}": 3.0, f"{REJECTED}{{reason=malformed_line}}": 2.0}
    sent = {ENV: [Expected(HITS, value=6), Expected(LATENCY, count=5, total=1.0), Expected(LEVEL, value=7)],
            PLAIN: [Expected(SIZE, count=5, total=1.0)]}  # fmt: skip
    line, _ = _wire_fix("malformed_line", "v0.26.1")
    value, fix = _wire_fix("malformed_value", "v0.26.1")
    lost = " (2 histogram context(s) lost: dogstatsd:app.latency, statsd:app.size)"
    assert judge(sent, Readings(families(counter(6)), errors), "v0.26.1") == [
        ("[dogstatsd] `app.level` did not produce `app_level`", RULE_FIX, LEVEL),
        (line + lost, _wire_fix("malformed_line", "v0.26.1")[1], None),
        (value + lost, fix, None),
    ]
    unsent = {f"{REJECTED}{{reason=illegal_tag}}": 0.0}
    assert judge(sent, Readings(families(counter(6) + level(7) + histogram(5, 1.0)), unsent)) == [
        ("[statsd] `app.size` did not produce `app_size_bytes`", RULE_FIX, SIZE)
    ]


def test_rejected_lines_list_the_first_four_histograms_lost() -> None:
    errors = {f"{REJECTED}{{reason=malformed_value}}": 3.0}
    sent = {ENV: [Expected(LATENCY, count=5), Expected(SIZE, count=5)],
            PLAIN: [Expected(LATENCY, count=5), Expected(SIZE, count=5), Expected(HITS, value=6)]}  # fmt: skip
    problem, fix = _wire_fix("malformed_value", "")
    assert judge(sent, Readings(families(hits_in_both(0, 6)), errors)) == [
        (problem + " (4 histogram context(s) lost: dogstatsd:app.latency, dogstatsd:app.size, statsd:app.latency, "
         "statsd:app.size)", fix, None),
    ]  # fmt: skip
    sent[PLAIN].append(Expected(LATENCY, count=5))
    assert judge(sent, Readings(families(hits_in_both(0, 6)), errors))[0][0].endswith("statsd:app.size, ...)")


def test_a_histogram_rejected_lines_lost_is_theirs_even_after_a_loss() -> None:
    errors = {f"{REJECTED}{{reason=malformed_value}}": 3.0}
    sent = {ENV: [Expected(LATENCY, count=5), Expected(HITS, value=6)]}
    problem, fix = _wire_fix("malformed_value", "")
    assert judge(sent, Readings({}, errors, dropped=2)) == [
        (LOST + "the exporter's socket dropped 2 datagram(s) (its receive buffer was full) (1 context(s) arrived "
         "short, not compared with the mapping: dogstatsd:app.hits)", LOSS_FIX, None),
        (problem + " (1 histogram context(s) lost: dogstatsd:app.latency)", fix, None),
    ]  # fmt: skip
