"""The compatibility matrix: which statsd_exporter and Prometheus versions the suite runs against.

``scripts/test`` installs every binary below (``go install`` / ``go build`` from the
Go module proxy) and caches it under ``.tools/<component>/<version>/``; the pinned
exporter and Debian's Prometheus are found on PATH as before. A binary that is
missing skips its tests with a reason on a laptop and FAILS them under ``CI=true``.

=============  ==============================  ==========================================
component      versions                        why
=============  ==============================  ==========================================
exporter       v0.26.1                         oldest in the matrix; needs
                                               ``NETAUTO_STATSD_EXPORTER_COMPAT=0.26``
exporter       v0.30.0                         the pin (docker-compose.yml)
exporter       newest the Go proxy serves      catches a new release's changes early
                                               (``go list -m -versions``; v0.31.0 seen)
Prometheus     Debian's package (2.42)         what CI installs with apt-get
Prometheus     v3.5.0                          the pin (docker-compose.yml)
=============  ==============================  ==========================================
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI, ROOT, find_binary

TOOLS = ROOT / ".tools"
HOW = "run scripts/test (NETAUTO_TEST_SETUP_ONLY=1 installs the matrix without running the suite)"
#: Newest exporter release seen on the Go module proxy; scripts/test records the current one in NEWEST.
NEWEST_SEEN = "v0.31.0"


def _missing(what: str) -> None:
    message = f"{what} not found ({HOW})"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def newest_exporter() -> str:
    """The newest exporter release scripts/test installed (``.tools/statsd_exporter/NEWEST``)."""
    recorded = TOOLS / "statsd_exporter" / "NEWEST"
    text = recorded.read_text().strip() if recorded.is_file() else ""
    return text or NEWEST_SEEN


@dataclass(frozen=True)
class ExporterVersion:
    """One statsd_exporter in the matrix and the client setting it needs."""

    version: str
    #: ``NETAUTO_STATSD_EXPORTER_COMPAT`` for this exporter (``""``: the newest wire)
    compat: str
    role: str
    #: found on PATH / .tools/bin like every other exporter test (the pin)
    on_path: bool = False

    @property
    def id(self) -> str:
        return f"exporter-{self.version}"

    def binary(self) -> str:
        """Path of this exporter; skips (laptop) or fails (CI) when it is not installed."""
        if self.on_path:
            path = find_binary("statsd_exporter")
        else:
            candidate = TOOLS / "statsd_exporter" / self.version / "statsd_exporter"
            path = str(candidate) if candidate.is_file() else None
        if path is None:
            _missing(f"statsd_exporter {self.version}")
        assert path is not None
        return path


@dataclass(frozen=True)
class PrometheusVersion:
    """One Prometheus (+ its promtool) in the matrix."""

    version: str
    role: str
    #: ``None``: Debian's package on PATH; else built under .tools/prometheus/<version>/
    directory: Path | None = None

    @property
    def id(self) -> str:
        return f"prometheus-{self.version}"

    def binary(self, name: str = "prometheus") -> str:
        """Path of ``prometheus`` or ``promtool``; skips (laptop) or fails (CI) when missing."""
        if self.directory is None:
            path = find_binary(name)
        else:
            candidate = self.directory / name
            path = str(candidate) if candidate.is_file() else None
        if path is None:
            _missing(f"{name} {self.version}")
        assert path is not None
        return path


PINNED_EXPORTER = "v0.30.0"
_NEWEST = newest_exporter()
EXPORTERS = (
    ExporterVersion("v0.26.1", compat="0.26", role="oldest in the matrix: one histogram value per line"),
    ExporterVersion(PINNED_EXPORTER, compat="", role="the pin (docker-compose.yml)", on_path=True),
    # the pin may be the newest release: then it runs once
    *(
        [ExporterVersion(_NEWEST, compat="", role="newest release the Go proxy serves")]
        if _NEWEST != PINNED_EXPORTER
        else []
    ),
)
PROMETHEUS = (
    PrometheusVersion("debian", role="Debian's package (2.42), what CI installs"),
    PrometheusVersion("v3.5.0", role="the pin (docker-compose.yml)", directory=TOOLS / "prometheus" / "v3.5.0"),
)


def reported_version(binary: str) -> str:
    """The version a binary reports (``--version``), for failure messages and the matrix report."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    first = (done.stdout or done.stderr).splitlines()
    return first[0] if first else "unknown"
