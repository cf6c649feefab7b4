"""The live proof of ``check``: the client's own wire, sent to a throw-away statsd_exporter, counted back.

For every catalog metric the real :class:`~netauto_statsd.emitter.Emitter` and
its transport send realistic traffic, in each wire format: several increments
per counter, several observations per histogram context (so the multi-value
lines ``name:v1:v2:...|h`` the client really packs are on the wire), one burst
larger than a flush carries one by one (so the sample-rated lines ``|@0.5`` the
client sends under load are on the wire too), and the per-process gauges with
their ``process`` tag. Then the exporter's ``/metrics``
is compared with what was sent, sample for sample: series name, type, label
names, counter totals, gauge values, histogram counts and sums; and the
exporter's own error counters must not have moved. A rejected line is reported
with the wire feature the exporter lacks and the setting that fixes it. Traffic
lost on the way (packets the client could not send, datagrams the kernel dropped
at the exporter's full socket, packets the exporter's own queue dropped) is one
finding that names the loss: a context that arrived short after it is not blamed
on the mapping.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netauto_statsd.catalog import PROCESS_TAG_KEY, Metric
from netauto_statsd.config import from_env
from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.aggregate import SAMPLES_PER_CONTEXT
from netauto_statsd.tags import normalise_value
from netauto_statsd.tooling.exporter import (
    COMPAT_SETTING,
    MULTI_VALUE_SINCE,
    PINNED_VERSION,
    SELF_ERRORS,
    ThrowawayExporter,
)
from netauto_statsd.wire.receiver import ReceiverProbe

#: Observations sent per histogram context: more than one, so the client packs a multi-value line.
HISTOGRAM_SECONDS = (0.005, 0.02, 0.12, 0.35, 1.5)
HISTOGRAM_BYTES = (256.0, 1024.0, 4096.0, 65536.0, 1048576.0)
#: Observations of one histogram context in one flush window: more than the client sends one by
#: one, so the excess travels as sample-rated lines the exporter must expand exactly. One value
#: repeated, so the expected sum stays exact whichever samples the client keeps.
BURST = SAMPLES_PER_CONTEXT + 7_232
#: Increments sent per counter context (total 6), and the value each gauge is set to.
COUNTER_INCREMENTS = (1, 2, 3)
GAUGE_VALUE = 7.0
#: Seconds the proof waits for everything it sent to land at the exporter (it ends as soon as it has).
ARRIVAL_TIMEOUT = 15.0
_PROM_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}
_COMPAT_VARIABLE = COMPAT_SETTING.split("=", 1)[0]
_MULTI_VALUE = "v" + ".".join(str(p) for p in MULTI_VALUE_SINCE)

#: A problem the live proof found, its one-line fix, and the metric it is about (``None``: the exporter).
LiveProblem = tuple[str, str, Metric | None]


def sample_tags(metric: Metric) -> dict[str, object]:
    """Realistic tag values for one sample of ``metric``."""
    return {tag.key: tag.sample_value() for tag in metric.tags}


def observations(metric: Metric) -> tuple[float, ...]:
    """The values the live proof observes for histogram ``metric``, in its unit."""
    return HISTOGRAM_SECONDS if metric.unit == "seconds" else HISTOGRAM_BYTES


@dataclass
class Expected:
    """What one metric's context must show at the exporter."""

    metric: Metric
    value: float = 0.0  # counter total or gauge value
    count: int = 0  # histogram observations
    total: float = 0.0  # histogram sum


def send_traffic(emitter: Emitter, metrics: Iterable[Metric]) -> list[Expected]:
    """Emit realistic traffic for every metric through ``emitter``, flush, and return what must arrive."""
    expected = []
    for metric in metrics:
        tags = sample_tags(metric)
        if metric.type == "counter":
            for step in COUNTER_INCREMENTS:
                emitter.increment(metric.name, step, tags)
            expected.append(Expected(metric, value=float(sum(COUNTER_INCREMENTS))))
        elif metric.type == "gauge":
            emitter.gauge(metric.name, GAUGE_VALUE, tags)
            expected.append(Expected(metric, value=GAUGE_VALUE))
        else:
            values = observations(metric)
            for value in values:
                emitter.histogram(metric.name, value, tags)
            expected.append(Expected(metric, count=len(values), total=sum(values)))
    emitter.flush()
    burst = next((want for want in expected if want.metric.type == "histogram"), None)
    if burst is not None:  # in a window of its own: only the burst is sampled
        value = observations(burst.metric)[2]
        emitter.histogram_many(burst.metric.name, [value] * BURST, sample_tags(burst.metric))
        emitter.flush()
        burst.count += BURST
        burst.total += value * BURST
    return expected


@dataclass
class LiveResult:
    """Problems (each with its fix) and notes of one live proof."""

    problems: list[LiveProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _family_name(metric: Metric) -> str:
    return metric.prometheus_name.removesuffix("_total") if metric.type == "counter" else metric.prometheus_name


def _sent_labels(metric: Metric) -> dict[str, str]:
    """The label values the live proof's context of ``metric`` carries (as the client normalises them)."""
    return {key: normalise_value(value) for key, value in sample_tags(metric).items()}


def _context(samples: list[Any], metric: Metric) -> list[Any]:
    """The samples of the context the live proof sent (the client's own counters may add others)."""
    sent = _sent_labels(metric).items()
    return [s for s in samples if sent <= s.labels.items()]


def compare(want: Expected, families: dict[str, Any], env: str) -> list[str]:
    """How the exporter's view of ``want.metric`` (samples labelled ``env``) differs from what was sent."""
    metric = want.metric
    family = families.get(_family_name(metric))
    samples = [s for s in family.samples if s.labels.get("env") == env] if family is not None else []
    if family is None or not samples:
        return [f"`{metric.name}` did not produce `{metric.prometheus_name}`"]
    problems = []
    # a summary for a histogram no dashboard or alert reads as `_bucket` is an operator's knob (the contract
    # check refuses it where buckets are read); it adds `quantile` where a histogram adds `le`
    types = {"histogram", "summary"} if metric.type == "histogram" else {_PROM_TYPE[metric.type]}
    if family.type not in types:
        problems.append(f"`{metric.prometheus_name}` is a {family.type}, the catalog declares a {metric.type}")
    expected_labels = set(metric.label_names())
    for s in samples:
        got = set(s.labels) - {"le", "quantile"}
        if got != expected_labels:
            problems.append(f"`{s.name}` has labels {sorted(got)}, the catalog declares {sorted(expected_labels)}")
            break
    if problems:
        return problems
    mine = _context(samples, metric)
    if not mine:
        seen = {k: v for k, v in samples[0].labels.items() if k in _sent_labels(metric)}
        return [f"`{metric.prometheus_name}` arrived with label values {seen}, sent {_sent_labels(metric)}"]
    samples = mine
    if metric.per_process and not all(s.labels.get(PROCESS_TAG_KEY) for s in samples):
        problems.append(f"`{metric.prometheus_name}` arrived without its `{PROCESS_TAG_KEY}` label")
    if metric.type == "histogram":
        count = sum(s.value for s in samples if s.name == f"{metric.prometheus_name}_count")
        total = sum(s.value for s in samples if s.name == f"{metric.prometheus_name}_sum")
        if count != want.count or not math.isclose(total, want.total, rel_tol=1e-6):
            problems.append(
                f"`{metric.prometheus_name}` counted {count:g} observation(s) summing to {total:g}; "
                f"sent {want.count} summing to {want.total:g}"
            )
    else:
        got_value = sum(s.value for s in samples if s.name in (metric.prometheus_name, _family_name(metric)))
        if got_value != want.value:
            problems.append(f"`{metric.prometheus_name}` reads {got_value:g}, sent {want.value:g}")
    return problems


def arrived(want: Expected, families: dict[str, Any], env: str) -> bool:
    """Whether everything sent for ``want`` has landed (its value may still differ: that is for :func:`compare`)."""
    family = families.get(_family_name(want.metric))
    samples = [s for s in family.samples if s.labels.get("env") == env] if family is not None else []
    samples = _context(samples, want.metric)
    if want.metric.type != "histogram":
        return bool(samples)
    return bool(sum(s.value for s in samples if s.name.endswith("_count")) >= want.count)


def _wire_fix(reason: str, version: str) -> tuple[str, str]:
    known = f" (this one is {version})" if version else ""
    if reason in ("malformed_value", "malformed_line"):
        return (
            f"the exporter rejected lines ({reason}): it does not accept the DogStatsD multi-value lines "
            f"(`name:v1:v2:...|h`) the client packs histogram samples into, accepted since {_MULTI_VALUE}{known}; "
            "every packed duration and size is lost",
            f"upgrade statsd_exporter to {PINNED_VERSION} (>= {_MULTI_VALUE}), or set {COMPAT_SETTING} "
            "in the app's environment (one value per line)",
        )
    return (
        f"the exporter rejected samples ({reason}){known}",
        f"run the exporter the repo pins ({PINNED_VERSION}); see docs/stack.md for the versions and settings",
    )


def _settings_env() -> dict[str, str]:
    """The client settings the operator chose that change the wire (the compatibility dialect)."""
    return {k: v for k, v in os.environ.items() if k == _COMPAT_VARIABLE}


def all_arrived(sent: dict[str, list[Expected]], families: dict[str, Any]) -> bool:
    """Everything ``sent`` (per env) landed; or lines were rejected and everything but the (lost) histograms landed."""
    wants = [(env, w) for env, ws in sent.items() for w in ws]
    if all(arrived(w, families, env) for env, w in wants):
        return True
    rejected = families.get("statsd_exporter_sample_errors")
    if rejected is None or not sum(s.value for s in rejected.samples):
        return False
    return all(arrived(w, families, env) for env, w in wants if w.metric.type != "histogram")


def arrived_short(want: Expected, families: dict[str, Any], env: str) -> bool:
    """Whether less arrived for ``want`` than was sent: nothing, fewer observations, a smaller counter total.

    What lost datagrams do; a wrong rule changes a name, type, label or unit instead (a wrong ``scale``
    changes a sum, not a count).
    """
    family = families.get(_family_name(want.metric))
    samples = [s for s in family.samples if s.labels.get("env") == env] if family is not None else []
    samples = _context(samples, want.metric)
    if not samples:
        return True
    if want.metric.type == "histogram":
        return bool(sum(s.value for s in samples if s.name.endswith("_count")) < want.count)
    return want.metric.type == "counter" and bool(sum(s.value for s in samples) < want.value)


@dataclass
class Readings:
    """What the live proof read back: the exporter's families and own counters, and the traffic lost on the way."""

    families: dict[str, Any]
    #: :meth:`~netauto_statsd.tooling.exporter.ThrowawayExporter.self_errors`
    errors: dict[str, float]
    #: per wire format: packets the client could not send
    failed: dict[str, int] = field(default_factory=dict)
    #: datagrams the kernel dropped at the exporter's socket (its receive buffer was full)
    dropped: int = 0


#: The fix of lost traffic: it says nothing about the mapping.
LOSS_FIX = (
    "the exporter did not take all of the proof's traffic (a busy machine, or a small `--statsd.read-buffer`): "
    "run check again; nothing here points at the mapping"
)
_QUEUE_DROPS = "statsd_exporter_udp_packet_drops_total"
#: Counters :func:`judge` reads in its own way (the rest must stay 0).
_READ_APART = ("drop_actions", _QUEUE_DROPS, "statsd_exporter_sample_errors_total")


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def _losses(got: Readings) -> list[str]:
    """Where the proof's traffic was lost, one phrase each."""
    causes = [f"[{transport}] the client could not send {n} packet(s)" for transport, n in got.failed.items() if n]
    if got.dropped:
        causes.append(f"the exporter's socket dropped {got.dropped} datagram(s) (its receive buffer was full)")
    queue = got.errors.get(_QUEUE_DROPS)
    if queue:
        causes.append(f"the exporter dropped {queue:g} packet(s) its queue had no room for ({_QUEUE_DROPS})")
    return causes


def judge(sent: dict[str, list[Expected]], got: Readings, version: str = "") -> list[LiveProblem]:
    """Every way the exporter's view differs from what was ``sent`` (per env), each with its fix.

    A context that arrived short after traffic was lost on its way (the client could not send, the
    exporter's socket or queue dropped datagrams) is not blamed on the mapping: one finding names the
    loss and those contexts.
    """
    errors = got.errors
    reasons = sorted(k.partition("{reason=")[2].removesuffix("}") for k, v in errors.items() if "{reason=" in k and v)
    causes = _losses(got)
    problems: list[LiveProblem] = []
    lost: list[str] = []
    short: list[str] = []
    for env, wants in sent.items():
        transport = env.removeprefix("check-")
        excused = bool(got.failed.get(transport) or got.dropped or errors.get(_QUEUE_DROPS))
        for want in wants:
            found = compare(want, got.families, env)
            if reasons and want.metric.type == "histogram" and any("did not produce" in p for p in found):
                lost.append(f"{transport}:{want.metric.name}")
            elif excused and arrived_short(want, got.families, env):
                short.append(f"{transport}:{want.metric.name}")
            else:
                fix = (
                    f"this rule makes the exporter differ from the contract declared in `{want.metric.module}` "
                    "(name, type, labels, unit): compare it with `netauto-statsd mapping`"
                )
                problems += [(f"[{transport}] {problem}", fix, want.metric) for problem in found]
    if causes:
        problem = "traffic was lost on the way to the exporter: " + "; ".join(causes)
        if short:
            problem += f" ({len(short)} context(s) arrived short, not compared with the mapping: {_first_names(short)})"
        problems.insert(0, (problem, LOSS_FIX, None))
    for reason in reasons:
        problem, fix = _wire_fix(reason, version)
        if lost:
            problem += f" ({len(lost)} histogram context(s) lost: {_first_names(lost)})"
        problems.append((problem, fix, None))
    for key, total in sorted(errors.items()):
        if total and key not in _READ_APART and "{reason=" not in key:
            fix = "read the exporter's log; every sample must map cleanly"
            problems.append((f"the exporter counted {total:g} in {key}", fix, None))
    return problems


def live_check(
    binary: str,
    mapping: Path,
    metrics: Iterable[Metric],
    namespace: str,
    plain: bool = True,
    version: str = "",
    timeout: float = ARRIVAL_TIMEOUT,
) -> LiveResult:
    """Start ``binary`` with ``mapping``, send every metric in each wire format, return what disagrees.

    Raises:
        netauto_statsd.tooling.exporter.ExporterError: the exporter cannot start (one clear line).
    """
    metrics = list(metrics)
    result = LiveResult()
    formats = ("dogstatsd", "statsd") if plain else ("dogstatsd",)
    base = from_env(_settings_env())
    with ThrowawayExporter(binary, mapping, extra=("--statsd.event-flush-interval=50ms",)) as exporter:
        sent: dict[str, list[Expected]] = {}
        failed: dict[str, int] = {}
        for transport in formats:
            env = f"check-{transport}"
            # the `service` tag keeps its default, "netauto" (_settings_env() passes no setting for it)
            settings = replace(
                base, host="127.0.0.1", port=exporter.udp_port, transport=transport, strict=True,
                namespace=namespace, env=env,
            )  # fmt: skip
            emitter = Emitter(settings)
            try:
                sent[env] = send_traffic(emitter, metrics)
                failed[transport] = emitter.stats()["packets_failed"]
            finally:
                emitter.close()
        families = exporter.poll(exporter.families, lambda families: all_arrived(sent, families), timeout)
        probe = ReceiverProbe(exporter.udp_port)
        dropped = probe.drops()
        probe.close()
        got = Readings(families, exporter.self_errors(), failed, dropped or 0)
        result.problems = judge(sent, got, version)
        samples = sum(len(w) for w in sent.values())
        result.notes.append(
            f"live proof against {binary}{f' {version}' if version else ''}: {len(metrics)} metrics x "
            f"{len(formats)} wire format(s), {samples} contexts compared sample for sample"
        )
    return result


__all__ = [
    "BURST",
    "LOSS_FIX",
    "SELF_ERRORS",
    "Expected",
    "LiveResult",
    "Readings",
    "all_arrived",
    "arrived_short",
    "compare",
    "judge",
    "live_check",
    "sample_tags",
    "send_traffic",
]
