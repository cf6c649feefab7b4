"""The in-memory recorder (netauto_statsd.testing) and the ``statsd_recorder`` pytest fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netauto_statsd import chunk_appended, run_created, run_finished, runner_lifecycle
from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter, set_emitter
from netauto_statsd.testing import Recorder, recording
from tests.runtime.core.wire import UdpSink

RUN = {"site": "par1", "protocol": "ssh"}


def test_recorder_queries(statsd_recorder: Recorder) -> None:
    run_created(site="par1", protocol="ssh", device="edge-1")
    run_created(site="lon2", protocol="telnet")
    chunk_appended(site="par1", protocol="ssh", size=100)
    chunk_appended(site="par1", protocol="ssh", size=250)
    run_finished(site="par1", protocol="ssh", total_bytes=350)
    emitter = get_emitter()
    emitter.gauge("liveview.sessions", 3, tags={"view": "/v"})
    emitter.gauge_add("liveview.sessions", -1, tags={"view": "/v"})
    emitter.gauge_add("liveview.sessions", 4, tags={"view": "/w"})

    assert statsd_recorder.total("run.created") == 2
    assert statsd_recorder.total("run.created", site="lon2") == 1
    assert statsd_recorder.total("chunk.bytes", site="par1", protocol="ssh") == 350
    assert statsd_recorder.count("chunk.appended") == 2
    assert statsd_recorder.values("run.output_bytes") == [350]
    assert statsd_recorder.total("run.device", device="edge-1") == 1
    assert statsd_recorder.gauge("liveview.sessions", view="/v") == 2
    assert statsd_recorder.gauge("liveview.sessions", view="/w") == 4
    assert statsd_recorder.gauge("liveview.sessions", view="/none") is None
    assert statsd_recorder.names() == {
        "run.created",
        "run.device",
        "chunk.appended",
        "chunk.bytes",
        "run.output_bytes",
        "liveview.sessions",
    }
    (sample,) = statsd_recorder.assert_emitted("run.output_bytes", site="par1")
    assert (sample.type, sample.value, sample.tags) == ("histogram", 350, RUN)
    statsd_recorder.assert_not_emitted("run.created", site="ams3")
    statsd_recorder.clear()
    assert statsd_recorder.samples == []


def test_recorder_sees_normalised_tags_as_they_would_be_sent(statsd_recorder: Recorder) -> None:
    run_created(site="par 1|x", protocol="ssh")
    assert statsd_recorder.find("run.created")[0].tags == {"site": "par_1_x", "protocol": "ssh"}


def test_recorder_refuses_a_value_outside_the_allowed_set(statsd_recorder: Recorder) -> None:
    with pytest.raises(CatalogError, match="must be one of ssh, telnet"):
        run_created(site="par1", protocol="carrier-pigeon")


def test_recorder_assertion_messages_say_what_was_emitted(statsd_recorder: Recorder) -> None:
    run_created(site="par1", protocol="ssh")
    with pytest.raises(
        AssertionError, match="was emitted with: \\[\\(\\('protocol', 'ssh'\\), \\('site', 'par1'\\)\\)\\]"
    ):
        statsd_recorder.assert_emitted("run.created", site="lon2")
    with pytest.raises(AssertionError, match="was emitted 1 time"):
        statsd_recorder.assert_not_emitted("run.created", site="par1")
    with pytest.raises(AssertionError, match="was emitted with: nothing"):
        statsd_recorder.assert_emitted("runner.stop")


def test_recorder_is_strict_by_default(statsd_recorder: Recorder) -> None:
    with pytest.raises(CatalogError):
        get_emitter().increment("not.declared")
    with pytest.raises(CatalogError, match="forbidden"):
        get_emitter().increment("run.created", tags={**RUN, "run_id": "42"})
    assert statsd_recorder.samples == []


def test_recording_restores_the_previous_emitter_and_sends_nothing(
    sink: UdpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # even with a destination in the environment, the recorder never touches UDP
    monkeypatch.setenv("DD_AGENT_HOST", "127.0.0.1")
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(sink.port))
    before = get_emitter()
    with recording(strict=False) as recorder:
        assert get_emitter() is not before
        with runner_lifecycle(RUN) as run:
            run.add_bytes(7)
        get_emitter().increment("not.declared")  # production mode: counted, not raised
        assert get_emitter().stats()["rejected"] == 1
        get_emitter().flush()
    assert get_emitter() is before
    assert recorder.values("runner.bytes", status="ok") == [7]
    assert sink.drain() == []
    set_emitter(None)
    before.close()


# ----------------------------------------------------------- the pytest plugin
PLUGIN_TEST = textwrap.dedent(
    """
    from netauto_statsd import run_created

    def test_uses_the_fixture(statsd_recorder):
        run_created(site="par1", protocol="ssh")
        assert statsd_recorder.total("run.created", site="par1") == 1
    """
)


#: Plugins that only slow the child session down (hypothesis alone takes seconds to import).
UNRELATED_PLUGINS_OFF = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:aiohttp", "-p", "no:asyncio")


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_plugin_user.py").write_text(PLUGIN_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *UNRELATED_PLUGINS_OFF, *args, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no conftest, no pyproject: only installed plugins
        env=env,
    )


def test_the_pytest11_entry_point_provides_the_fixture(tmp_path: Path) -> None:
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_without_the_entry_point_the_fixture_is_missing(tmp_path: Path) -> None:
    # control: the fixture really comes from the netauto_statsd plugin
    result = run_pytest(tmp_path, "-p", "no:netauto_statsd")
    assert result.returncode != 0
    assert "fixture 'statsd_recorder' not found" in result.stdout
