"""The demo's run job in process: the runs that fail on purpose, whatever their device's odds."""

from __future__ import annotations

from netauto_statsd.testing import Recorder
from tests.support import require_module

require_module("netauto_demo", "pip install -e ./examples")
from netauto_demo import automation  # noqa: E402
from netauto_demo.devices import DeviceError, DeviceTimeoutError  # noqa: E402
from netauto_demo.jobs import FORCED_FAULTS, execute_run  # noqa: E402


def test_run_2_fails_and_run_5_times_out_so_the_error_panels_fill_in_the_first_minute(
    database: None, statsd_recorder: Recorder
) -> None:
    """However few runs a busy machine completes, the error and timeout series appear early.

    Without the forced faults, runs 1-6 of these devices all succeed (their own odds are a
    few per cent), and a demo that completes only a few dozen runs can show empty error panels.
    """
    assert FORCED_FAULTS == {2: "error", 5: "timeout"}
    outcomes: dict[int, str] = {}
    for run_id in range(1, 7):
        run = automation.create_run(1 + (run_id - 1) % 4, "show version")
        assert run.id == run_id
        try:
            execute_run(run_id)
        except DeviceTimeoutError:
            outcomes[run_id] = "timeout"
        except DeviceError:
            outcomes[run_id] = "error"
        else:
            outcomes[run_id] = "ok"
    assert outcomes == {1: "ok", 2: "error", 3: "ok", 4: "ok", 5: "timeout", 6: "ok"}
    # the error panels: one error by exception class (a timeout is a status, not an error class)
    assert [(s.tags["error"], s.value) for s in statsd_recorder.find("runner.error")] == [("DeviceError", 1)]
    statuses = [s.tags["status"] for s in statsd_recorder.find("runner.duration")]
    assert sorted(statuses) == ["error", "ok", "ok", "ok", "ok", "timeout"]
