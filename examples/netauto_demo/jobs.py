"""The RQ job: execute a run on its (simulated) device under ``runner_lifecycle``.

Runs in an RQ work horse (forked per job by the default Worker). The runner
decorator records start, stop, error, duration and bytes; the automation
functions record chunk throughput; the instrumented worker flushes before the
horse exits.
"""

from __future__ import annotations

import random
import time

from netauto_demo.automation import append_chunk, finish_run, get_run, set_status
from netauto_demo.devices import DeviceError, DeviceTimeoutError, fake_output, profile
from netauto_demo.models import Device, session
from netauto_statsd import runner_lifecycle
from netauto_statsd.scopes import status_of

JOB_FUNCTION = "netauto_demo.jobs.execute_run"

#: Runs that fail on purpose whatever their device's odds, so the error and timeout panels
#: (and the job-failure ones) have data within the first minute, however few runs a busy
#: machine completes: run 2 raises a device error on its last chunk, run 5 times out there.
FORCED_FAULTS = {2: "error", 5: "timeout"}


def execute_run(run_id: int) -> int:
    """Execute run ``run_id``; returns the output bytes. Raises like the device does."""
    run = get_run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    with session() as db:
        device = db.get(Device, run.device_id)
    if device is None:
        raise LookupError(f"run {run_id} has no device")
    set_status(run_id, "running")
    behaviour = profile(device.site, device.protocol, run.command)
    rng = random.Random(run_id)
    chunks = rng.randint(*behaviour.chunks)
    fail_at = rng.randrange(chunks) if rng.random() < behaviour.failure_rate else -1
    stall_at = rng.randrange(chunks) if rng.random() < behaviour.timeout_rate else -1
    forced = FORCED_FAULTS.get(run_id)
    if forced is not None:
        fail_at, stall_at = (chunks - 1, -1) if forced == "error" else (-1, chunks - 1)
    total = 0
    error: BaseException | None = None
    try:
        with runner_lifecycle({"site": device.site, "protocol": device.protocol}) as scope:
            for seq in range(chunks):
                time.sleep(behaviour.chunk_latency)  # the device producing output: the simulated work
                if seq == fail_at:
                    raise DeviceError(f"{device.name}: % Invalid input detected at '^' marker")
                if seq == stall_at:
                    raise DeviceTimeoutError(f"{device.name}: no answer within the command timeout")
                data = fake_output(rng, rng.randint(*behaviour.chunk_bytes), run.command, seq)
                append_chunk(run, device, seq, data)
                scope.add_bytes(len(data))
                total += len(data)
    except BaseException as exc:
        error = exc
        raise
    finally:
        finish_run(run, device, status_of(error), total)
    return total
