"""The local stack without Docker: ``scripts/stack`` (installs what is missing) or ``python -m netauto_demo.stack``.

Starts, all on 127.0.0.1 and each in its own process group: statsd_exporter
with the repo mapping (DogStatsD only), Prometheus with a copy of
``bridge/prometheus.yml`` (same jobs and rules, targets pointed here), Redis,
the demo app, RQ workers and the load generator. Prints the URLs and a progress
line; Ctrl-C, SIGTERM or ``--duration`` stops everything it started. At exit it
writes the HTML report of every dashboard panel (``netauto-statsd report``) when
that command is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from netauto_demo.faults import MUTED_WORKER, muted_worker_line, worker_env
from netauto_demo.processes import STACK_VARIABLE, Child, find_binary, http_ok, pick_port, sweep, write_registry

PROG = "netauto-statsd stack"
#: the compose stack's host ports, used when free (``--any-ports``: always free ones)
PREFERRED = {"prometheus": 9090, "exporter_web": 9102, "exporter_udp": 9125, "app": 8080}
#: shorter than bridge/prometheus.yml's 15 s, so a few minutes of demo fill every panel
SCRAPE_INTERVAL = "5s"
INSTALL_HINT = "run scripts/stack (it installs what is missing), or see docs/stack.md#without-docker"


def say(message: str) -> None:
    """One line of what the stack does (stdout)."""
    print(f"{PROG}: {message}", flush=True)


def repo_root(given: str | None) -> Path:
    """The repository (it holds bridge/ and grafana/): ``--root``, this checkout, or the current directory."""
    candidates = [Path(given)] if given else [Path(__file__).resolve().parents[2], Path.cwd()]
    for candidate in candidates:
        if (candidate / "bridge" / "statsd_mapping.yml").is_file():
            return candidate.resolve()
    raise SystemExit(f"{PROG}: error: no bridge/statsd_mapping.yml under {', '.join(map(str, candidates))}; "
                     "run it from the repository or pass --root")  # fmt: skip


def prometheus_config(root: Path, exporter: str, itself: str, scrape: str | None) -> dict[str, Any]:
    """``bridge/prometheus.yml`` with its targets pointed at this stack and rule files by absolute path.

    Job names and rules stay as they are, so dashboards ("Exporters up") and alerts work unchanged.
    """
    import yaml

    source = root / "bridge" / "prometheus.yml"
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    if scrape:
        config["global"].update(scrape_interval=scrape, evaluation_interval=scrape)
        config["global"]["scrape_timeout"] = scrape if _seconds(scrape) < 10 else "10s"
    config["rule_files"] = [str((source.parent / pattern).resolve()) for pattern in config.get("rule_files", [])]
    targets = {"statsd-exporter": exporter, "prometheus": itself}
    for job in config["scrape_configs"]:
        if job["job_name"] not in targets:
            raise SystemExit(f"{PROG}: error: {source} has a job {job['job_name']!r} this stack cannot point")
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not match:
        raise ValueError(f"not a duration like 5s or 1m: {duration!r}")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=2) as response:
        return list(json.loads(response.read())["data"]["result"])


def _value(prometheus: str, expr: str) -> float:
    try:
        result = _query(prometheus, expr)
    except (OSError, ValueError, KeyError):
        return math.nan
    return float(result[0]["value"][1]) if result else 0.0


class Stack:
    """Everything the stack started, in start order."""

    def __init__(self, args: argparse.Namespace, root: Path, workdir: Path) -> None:
        self.args = args
        self.root = root
        self.workdir = workdir
        self.children: list[Child] = []
        self.ports = {
            name: pick_port(0 if args.any_ports else port, socket.SOCK_DGRAM if name == "exporter_udp" else 0)
            for name, port in PREFERRED.items()
        }
        self.ports["redis"] = pick_port(0)
        self.prometheus = f"http://127.0.0.1:{self.ports['prometheus']}"
        self.exporter = f"http://127.0.0.1:{self.ports['exporter_web']}"
        self.app = f"http://127.0.0.1:{self.ports['app']}"
        self.udp = f"udp://127.0.0.1:{self.ports['exporter_udp']}"
        self.started = time.time()
        self.run_id = uuid.uuid4().hex  # marks every process started here (see processes.sweep)

    # ------------------------------------------------------------------ start
    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None, stop_timeout: float = 15) -> Child:
        env = {**(env if env is not None else os.environ), STACK_VARIABLE: self.run_id}
        child = Child(name, args, self.workdir, env, stop_timeout)
        self.children.append(child)
        write_registry(self.workdir / "processes.json", self.children)
        return child

    def binaries(self) -> dict[str, str]:
        """statsd_exporter, prometheus and redis-server, or exit 1 naming what is missing."""
        found = {name: find_binary(name, self.root) for name in ("statsd_exporter", "prometheus", "redis-server")}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise RuntimeError(f"not found: {', '.join(missing)}; {INSTALL_HINT}")
        return {name: str(path) for name, path in found.items()}

    def start(self) -> None:
        """Start every component and wait until each answers."""
        bins = self.binaries()
        exporter = self._start("statsd_exporter", [
            bins["statsd_exporter"],
            f"--statsd.mapping-config={self.root / 'bridge' / 'statsd_mapping.yml'}",
            f"--statsd.listen-udp=127.0.0.1:{self.ports['exporter_udp']}",
            "--statsd.listen-tcp=",
            f"--web.listen-address=127.0.0.1:{self.ports['exporter_web']}",
            # DogStatsD only: the other tag dialects could misread a metric name
            "--no-statsd.parse-influxdb-tags", "--no-statsd.parse-librato-tags", "--no-statsd.parse-signalfx-tags",
        ])  # fmt: skip
        exporter.wait_ready(lambda: http_ok(f"{self.exporter}/-/ready"), 20, "/-/ready")

        config = prometheus_config(self.root, f"127.0.0.1:{self.ports['exporter_web']}",
                                   f"127.0.0.1:{self.ports['prometheus']}", self.args.scrape_interval)  # fmt: skip
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        prometheus = self._start("prometheus", [
            bins["prometheus"], f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}", "--log.level=warn",
        ])  # fmt: skip
        prometheus.wait_ready(lambda: http_ok(f"{self.prometheus}/-/ready"), 60, "/-/ready")

        redis = self._start("redis", [
            bins["redis-server"], "--port", str(self.ports["redis"]), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
        ])  # fmt: skip
        redis.wait_ready(lambda: _redis_ping(self.ports["redis"]), 20, "PING")

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_STRICT"))},
            "DD_DOGSTATSD_URL": self.udp,
            "NETAUTO_STATSD_ENV": self.args.env,
            "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'netauto.db'}",
        }
        demo = [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo"]
        # 120 devices: more than run.device's cap, so the fleet audit shows the folding into 'other'
        app = self._start("app", [*demo, "--role", "app", "--port", str(self.ports["app"]), "--devices", "120"], env)
        app.wait_ready(lambda: http_ok(f"{self.app}/healthz"), 60, "/healthz")
        for index in range(self.args.workers):  # RQ warm shutdown: the current job finishes
            self._start(f"worker-{index}", [*demo, "--role", "worker"], worker_env(index, env), stop_timeout=30)
        if self.args.workers > MUTED_WORKER:
            say(muted_worker_line(f"worker-{MUTED_WORKER}"))
        self._start("load", [*demo, "--role", "load", "--target", self.app, "--duration", "0",
                             "--rate", str(self.args.rate), "--quiet"], env)  # fmt: skip
        self.started = time.time()  # --duration counts from here

    def urls(self) -> str:
        """What to open, and where metrics go."""
        return "\n".join([
            f"  Prometheus       {self.prometheus}  (Status > Targets: the exporter; graph netauto_* series)",
            f"  statsd_exporter  {self.exporter}/metrics",
            f"  demo app         {self.app}/api/stats",
            f"  logs and data    {self.workdir}",
            f"  metrics: the demo sends DogStatsD to {self.udp} (DD_DOGSTATSD_URL). Name the port: the client",
            "  defaults to localhost:8125 while statsd_exporter listens on :9125 by default.",
        ])  # fmt: skip

    # --------------------------------------------------------------- running
    def dead(self) -> Child | None:
        """The first child that exited on its own, if any."""
        return next((child for child in self.children if not child.alive()), None)

    def progress(self) -> str:
        """One status line: exporter intake, Prometheus' view, the demo's runs."""
        elapsed = time.time() - self.started
        samples = _value(self.prometheus, "sum(statsd_exporter_samples_total)")
        up = _value(self.prometheus, 'sum(up{job="statsd-exporter"})')
        series = _value(self.prometheus, 'count({__name__=~"netauto_.+"})')
        try:
            with urllib.request.urlopen(f"{self.app}/api/stats", timeout=2) as response:
                runs = json.loads(response.read())
            states = " ".join(f"{k} {v}" for k, v in sorted(runs.items())) or "-"
        except (OSError, ValueError):
            states = "?"
        return (f"[{elapsed:5.0f}s] runs: {states} | exporter samples {samples:.0f} | "
                f"Prometheus: exporters up {up:.0f}, netauto series {series:.0f}")  # fmt: skip

    def wait_for_a_scrape(self) -> None:
        """Let Prometheus scrape once more so the last figures are stored."""
        since = time.time()
        deadline = since + 2 * _seconds(self.args.scrape_interval or "15s") + 5
        while time.time() < deadline:
            if _value(self.prometheus, 'max(timestamp(up{job="statsd-exporter"}))') > since:
                return
            time.sleep(0.2)

    def report(self) -> None:
        """``netauto-statsd report`` of every panel into ``--report``, when the command exists."""
        if self.args.no_report:
            return
        cli = [sys.executable, "-m", "netauto_statsd.tooling.cli", "report"]
        if subprocess.run([*cli, "--help"], capture_output=True, cwd=self.workdir).returncode != 0:
            say("no HTML report: this netauto-statsd has no `report` command")
            return
        out = Path(self.args.report or self.workdir / "report").resolve()
        minutes = max(5, math.ceil((time.time() - self.started) / 60) + 1)
        args = [*cli, "--prometheus", self.prometheus, "--out", str(out), "--range", f"{minutes}m",
                "--var", f"env={self.args.env}", "--dashboards", str(self.root / "grafana" / "dashboards")]  # fmt: skip
        if self.args.scrape_interval:
            args += ["--scrape-interval", self.args.scrape_interval]
        done = subprocess.run(args, capture_output=True, text=True, cwd=self.workdir)
        if done.returncode == 0 and (out / "index.html").is_file():
            say(f"report of every dashboard panel: {out / 'index.html'}")
            for line in done.stdout.strip().splitlines()[:12]:  # its summary, and panels without data
                print(f"  {line}", flush=True)
        else:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            say(f"report failed ({last[0]}); it needs the report extra: pip install -e '.[report]'")

    def stop(self) -> None:
        """Stop the demo first (its last flush lands), then record, then the services."""
        demo = [c for c in self.children if c.name in {"load", "app"} or c.name.startswith("worker-")]
        for child in sorted(demo, key=lambda c: c.name != "load"):
            child.stop()
        services = [c for c in self.children if c not in demo]
        if any(c.name == "prometheus" and c.alive() for c in services):
            self.wait_for_a_scrape()
            self.report()
        for child in reversed(services):
            child.stop()
        left = sweep(self.run_id)
        if left:
            say(f"stopped {len(left)} stray process(es) that had left their group: {left}")


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The stack's command line."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 (default): until Ctrl-C")
    parser.add_argument("--rate", type=float, default=2.0, help="runs started per second (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers (default 2)")
    parser.add_argument("--env", default="local", help="the env label of every series (default local)")
    parser.add_argument("--scrape-interval", default=SCRAPE_INTERVAL,
                        help=f"Prometheus scrape and rule interval (default {SCRAPE_INTERVAL}: a short run fills "
                             "every panel; bridge/prometheus.yml and compose keep 15s)")  # fmt: skip
    parser.add_argument("--any-ports", action="store_true", help="free ports instead of 9090/9102/9125/8080")
    parser.add_argument("--workdir", help="logs, database and Prometheus data (default: a new temp dir, kept)")
    parser.add_argument("--report", help="where the HTML report goes (default: <workdir>/report)")
    parser.add_argument("--no-report", action="store_true", help="no HTML report at exit")
    parser.add_argument("--root", help="the repository (default: this checkout or the current directory)")
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate (argparse errors, exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (math.isfinite(args.duration) and args.duration >= 0):
        parser.error(f"argument --duration: must be seconds >= 0 (0: until Ctrl-C), got {args.duration:g}")
    if not (math.isfinite(args.rate) and args.rate > 0):
        parser.error(f"argument --rate: must be a number of runs per second > 0, got {args.rate:g}")
    if args.workers < 1:
        parser.error(f"argument --workers: must be >= 1, got {args.workers}")
    if args.scrape_interval:
        try:
            _seconds(args.scrape_interval)
        except ValueError as exc:
            parser.error(f"argument --scrape-interval: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the stack until Ctrl-C / SIGTERM / ``--duration``; 1 if something failed."""
    args = parse_args(argv)
    root = repo_root(args.root)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="netauto-stack-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stack = Stack(args, root, workdir)
    status = 0
    try:
        say("starting statsd_exporter, Prometheus, Redis, the demo app, workers and load on 127.0.0.1")
        stack.start()
        say("running:\n" + stack.urls())
        say("Ctrl-C stops everything" + (f" (or after {args.duration:g}s)" if args.duration else ""))
        last = 0.0
        while not stopping.wait(0.5):
            if args.duration and time.time() - stack.started >= args.duration:
                break
            dead = stack.dead()
            if dead is not None:
                say(f"error: {dead.name} exited ({dead.proc.returncode}):\n{dead.tail()}")
                status = 1
                break
            if time.monotonic() - last >= args.progress_every:
                last = time.monotonic()
                print(stack.progress(), flush=True)
    except RuntimeError as exc:
        say(f"error: {exc}")
        status = 1
    finally:
        say("stopping everything it started")
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
        say(f"stopped; logs and data kept in {workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
