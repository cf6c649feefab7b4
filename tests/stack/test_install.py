"""The image's install step, reproduced in a clean virtualenv, and the compose services' commands run on it.

No Docker engine here, so this does what the Dockerfile does without one: copy
exactly the files its COPY lines name, ``pip install ".[<ARG EXTRAS>]"`` into a
fresh venv (PyPI, pip's cache reused), then run the entry point, parse every
compose command with the installed CLI, and start the app with its compose
command and pass its compose healthcheck.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack import (
    ROOT,
    built_services,
    command_args,
    dockerfile_copies,
    dockerfile_exec_form,
    dockerfile_extras,
    services,
)
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

PIP_TIMEOUT = 110  # the whole module must stay well under two minutes


@dataclass
class Install:
    """A clean venv holding the package as the image installs it."""

    venv: Path
    workdir: Path  # outside the repo, so the checkout's package cannot shadow the installed one

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def console_script(self) -> str:
        return str(self.venv / "bin" / "netauto-statsd")

    def env(self, **extra: str) -> dict[str, str]:
        """A minimal environment: nothing from the caller's DD_*, NETAUTO_*, REDIS_URL, DATABASE_URL."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
        return {**keep, "PYTHONDONTWRITEBYTECODE": "1", **extra}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=self.workdir, env=self.env(), capture_output=True, text=True, timeout=timeout)


def emulate_copies(destination: Path) -> None:
    """Do the Dockerfile's COPY lines (WORKDIR /src) from the repo into ``destination``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
    for sources, target in dockerfile_copies():
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"Dockerfile copies {source}, which is not in the repo"
            into_dir = target.endswith("/") or len(sources) > 1
            dst = destination / target / src.name if into_dir else destination / target
            if src.is_dir():
                shutil.copytree(src, dst, ignore=ignore)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """``python -m venv`` + ``pip install ".[<extras>]"`` from a copy of what the image copies."""
    base = tmp_path_factory.mktemp("image-install")
    src, venv, workdir = base / "src", base / "venv", base / "work"
    src.mkdir()
    workdir.mkdir()
    emulate_copies(src)
    # --without-pip + this environment's pip (`pip --python`): the same clean target, minus ~15 s of ensurepip
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    spec = f".[{dockerfile_extras()}]"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--quiet",
        spec,
        "./examples",
    ]
    result = subprocess.run(pip, cwd=src, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    assert result.returncode == 0, f"pip install {spec} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return Install(venv, workdir)


def test_dockerfile_extras_exist_in_setup_cfg() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = set(config["options.extras_require"])
    assert set(dockerfile_extras().split(",")) <= declared


def test_installed_package_is_consistent_and_not_the_checkout(install: Install) -> None:
    check = install.run(sys.executable, "-m", "pip", "--python", install.python, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    where = install.run(install.python, "-c", "import netauto_statsd; print(netauto_statsd.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(install.venv), where.stdout


def test_entrypoint_and_demo_subcommand_start(install: Install) -> None:
    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    assert entrypoint == ["netauto-statsd"] and Path(install.console_script).exists()
    for args in ([], ["demo"]):
        result = install.run(install.console_script, *args, "--help")
        assert result.returncode == 0, f"netauto-statsd {' '.join(args)} --help:\n{result.stderr}"
    demo_help = install.run(install.console_script, "demo", "--help").stdout
    for option in ("--role", "--port", "--target", "--rate", "--duration", "--devices"):
        assert option in demo_help, f"netauto-statsd demo has no {option}"


def test_every_compose_command_is_accepted_by_the_installed_cli(install: Install) -> None:
    """Parse (never run) each service's command and the image's CMD with the installed argparse parser."""
    parse = "import sys; from netauto_statsd.tooling.cli import build_parser; build_parser().parse_args(sys.argv[1:])"
    commands = {name: command_args(svc) for name, svc in built_services().items()}
    commands["Dockerfile CMD"] = dockerfile_exec_form("CMD")
    for name, args in commands.items():
        result = install.run(install.python, "-c", parse, *args)
        assert result.returncode == 0, f"{name}: netauto-statsd {' '.join(args)}\n{result.stderr}"


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced (or the option appended)."""
    if option in args:
        i = args.index(option)
        return [*args[: i + 1], value, *args[i + 2 :]]
    return [*args, option, value]


def test_app_starts_with_its_compose_command_and_passes_its_healthcheck(install: Install, tmp_path: Path) -> None:
    """The app service as compose runs it (port and endpoints swapped for local ones), then the load generator.

    Metrics go to a real loopback UDP socket standing in for the exporter: a
    datagram from the app proves the installed package honours DD_DOGSTATSD_URL.
    """
    app, loadgen = services()["app"], services()["loadgen"]
    port = free_port()
    probe = app["healthcheck"]["test"][3].replace("localhost:8080", f"127.0.0.1:{port}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, open(tmp_path / "app.log", "wb") as log:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.05)
        env = install.env(
            DD_DOGSTATSD_URL=f"udp://127.0.0.1:{sink.getsockname()[1]}",
            NETAUTO_STATSD_ENV=app["environment"]["NETAUTO_STATSD_ENV"],
            DATABASE_URL=f"sqlite:///{tmp_path}/netauto.db",  # no REDIS_URL: jobs run in-process
        )
        args = [install.console_script, *with_option(command_args(app), "--port", str(port))]
        process = subprocess.Popen(args, cwd=install.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while subprocess.run([install.python, "-c", probe], env=env, capture_output=True).returncode != 0:
                app_log = (tmp_path / "app.log").read_text(errors="replace")[-3000:]
                assert process.poll() is None, f"the app exited:\n{app_log}"
                assert time.monotonic() < deadline, f"the compose healthcheck never passed:\n{app_log}"
                time.sleep(0.1)
            assert wait_until(lambda: sink.recv(65535), 10, "a DogStatsD datagram from the app")

            load_args = with_option(command_args(loadgen), "--target", f"http://127.0.0.1:{port}")
            load_args = with_option(load_args, "--duration", "2")
            load = subprocess.run(
                [install.console_script, *load_args],
                cwd=install.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert load.returncode == 0, f"loadgen:\n{load.stdout[-2000:]}\n{load.stderr[-2000:]}"
            assert "runs started" in load.stdout, load.stdout
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
