"""The declaring module a ``counter()`` / ``histogram()`` / ``gauge()`` records (``Metric.module``).

``check`` and the docs name it as the owner of a metric's contract, and
:func:`~netauto_statsd.catalog.is_builtin` decides from it which families are the
library's. It is the module that called the declaration function: an app catalog
module, a helper module wrapping the declaration, ``__main__`` for code run by ``exec``.

Read from the call stack at a fixed depth, so mutmut's trampolines (extra frames in
their own module) move it: ``[mutmut]`` in setup.cfg deselects this file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netauto_statsd import catalog
from netauto_statsd.catalog import Counter, Gauge, Histogram

WriteModule = Callable[[str, str], str]


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """Whatever a test declares leaves the registry afterwards."""
    before = dict(catalog.BY_NAME)
    yield
    catalog.BY_NAME.clear()
    catalog.BY_NAME.update(before)


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write a module ``name`` with ``source`` on sys.path; forgotten from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_each_kind_declared_in_an_app_module_records_that_module(app_module: WriteModule) -> None:
    name = app_module(
        "netauto_test_declaring_app",
        "from netauto_statsd.catalog import counter, gauge, histogram\n"
        "JOBS = counter('decl.jobs', help='Jobs.', prometheus_name='decl_jobs_total')\n"
        "TOOK = histogram('decl.took', unit='seconds', help='Took.', prometheus_name='decl_took_seconds',"
        " buckets=[1])\n"
        "DEPTH = gauge('decl.depth', help='Depth.', prometheus_name='decl_depth')\n",
    )
    catalog.load([name])
    jobs, took, depth = (catalog.get(n) for n in ("decl.jobs", "decl.took", "decl.depth"))
    assert (type(jobs), type(took), type(depth)) == (Counter, Histogram, Gauge)
    assert [jobs.module, took.module, depth.module] == [name] * 3
    assert not any(catalog.is_builtin(m) for m in (jobs, took, depth))
    assert catalog.app_metrics()[-3:] == (jobs, took, depth)


def test_a_declaration_through_a_helper_module_records_the_helpers_module(app_module: WriteModule) -> None:
    """The module that called ``counter()`` is the declaring one, not the module that imported it."""
    helper = app_module(
        "netauto_test_declaring_helper",
        "from netauto_statsd.catalog import counter\n"
        "def declare_jobs(name):\n"
        "    return counter(name, help='Jobs.', prometheus_name=name.replace('.', '_') + '_total')\n",
    )
    user = app_module(
        "netauto_test_declaring_user",
        f"from {helper} import declare_jobs\nJOBS = declare_jobs('decl.helped')\n",
    )
    catalog.load([user])
    assert catalog.get("decl.helped").module == helper


def test_a_declaration_from_this_test_module_records_it() -> None:
    took = catalog.histogram("decl.here", unit="bytes", help="Here.", prometheus_name="decl_here_bytes", buckets=(1, 2))
    assert took.module == __name__ == "tests.runtime.core.test_declaring_module"


def test_code_run_without_a_module_name_declares_as_main() -> None:
    """``exec`` with bare globals (no ``__name__``): the metric belongs to ``__main__``, like a script's."""
    scope: dict[str, object] = {"counter": catalog.counter}
    exec("JOBS = counter('decl.exec', help='Jobs.', prometheus_name='decl_exec_total')", scope)
    jobs = scope["JOBS"]
    assert isinstance(jobs, Counter) and jobs.module == "__main__"
    assert not catalog.is_builtin(jobs)
