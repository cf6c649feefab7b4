"""One guard, one logger, one contract: what every integration shares."""

from __future__ import annotations

import configparser
import logging
import re
from pathlib import Path

import pytest

from netauto_statsd.catalog import CatalogError
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.guard import call, failed
from netauto_statsd.integrations._base import SUPPORTED, UnsupportedVersionError, check_supported
from tests.support import ROOT

PACKAGE = ROOT / "netauto_statsd"


@pytest.fixture
def emitter() -> Emitter:
    made = Emitter(Settings(disabled=True))
    previous = set_emitter(made)
    yield made
    set_emitter(previous)
    made.close()


def test_the_guard_swallows_counts_and_logs_a_metrics_failure(
    emitter: Emitter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise KeyError("no such context")

    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        assert call("rq job outcome", broken) is None
    assert emitter.stats()["internal_errors"] == 1
    assert "rq job outcome failed: 'no such context'" in caplog.text


def test_the_guard_raises_a_catalog_error_or_defers_it(emitter: Emitter) -> None:
    error = CatalogError("rq.job.finished: tag 'status' does not allow 'odd'")
    with pytest.raises(CatalogError) as raised:
        call("rq report", _raiser(error))
    assert raised.value is error
    assert failed("aiohttp publish", error, defer=True) is error  # a timer hands it to the next request
    assert emitter.stats()["internal_errors"] == 0


def _raiser(error: Exception):  # type: ignore[no-untyped-def]
    def action() -> None:
        raise error

    return action


def test_one_logger_with_one_null_handler() -> None:
    import netauto_statsd.integrations.aiohttp
    import netauto_statsd.integrations.rq
    import netauto_statsd.integrations.sqlalchemy
    import netauto_statsd.wire.dogstatsd
    import netauto_statsd.wire.plain  # noqa: F401

    handlers = logging.getLogger("netauto_statsd").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
    setups = [p for p in PACKAGE.rglob("*.py") if "getLogger(" in p.read_text() or "NullHandler" in p.read_text()]
    assert [p.relative_to(PACKAGE).as_posix() for p in setups] == ["_log.py"]


def test_no_integration_writes_its_own_guard() -> None:
    # The rule lives in netauto_statsd.guard; integrations and scopes hand failures to it.
    places = [PACKAGE / "scopes.py", *sorted((PACKAGE / "integrations").rglob("*.py"))]
    copies = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in places
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"except\s+CatalogError", line)
    ]
    assert copies == []


def test_a_framework_outside_the_supported_range_is_refused_with_a_clear_message() -> None:
    with pytest.raises(UnsupportedVersionError) as raised:
        check_supported("netauto_statsd.integrations.rq", "1.16")
    assert str(raised.value) == "netauto_statsd.integrations.rq supports rq>=2.0,<4; found 1.16"
    with pytest.raises(UnsupportedVersionError, match=re.escape("supports aiohttp>=3.9,<4; found 4.0.0")):
        check_supported("netauto_statsd.integrations.aiohttp", "4.0.0")
    check_supported("netauto_statsd.integrations.sqlalchemy", "2.0.36")
    for integration in SUPPORTED:  # what the test environment installed is supported
        check_supported(integration)


def test_the_install_extras_declare_the_supported_ranges() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    for integration, (distribution, spec) in SUPPORTED.items():
        extra = integration.rsplit(".", 1)[1]
        assert f"{distribution}{spec}" in extras[extra].split(), (extra, extras[extra])


def test_install_and_uninstall_are_idempotent_for_every_integration(tmp_path: Path) -> None:
    from aiohttp import web
    from sqlalchemy import create_engine

    from netauto_statsd.integrations.aiohttp import AiohttpInstrumentor
    from netauto_statsd.integrations.sqlalchemy import SQLAlchemyInstrumentor

    app = web.Application()
    aiohttp_instrumentor = AiohttpInstrumentor()
    aiohttp_instrumentor.install(app)
    aiohttp_instrumentor.install(app)
    assert len(app.middlewares) == 1 and aiohttp_instrumentor.is_installed(app)
    aiohttp_instrumentor.uninstall(app)
    aiohttp_instrumentor.uninstall(app)
    assert len(app.middlewares) == 0 and not aiohttp_instrumentor.is_installed(app)

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    sqlalchemy_instrumentor = SQLAlchemyInstrumentor()
    options = {"name": "default", "tables": None, "pool_gauges": None}
    sqlalchemy_instrumentor.install(engine, **options)
    sqlalchemy_instrumentor.install(engine, **options)
    assert sqlalchemy_instrumentor.is_installed(engine)
    sqlalchemy_instrumentor.uninstall(engine)
    sqlalchemy_instrumentor.uninstall(engine)
    assert not sqlalchemy_instrumentor.is_installed(engine)
    engine.dispose()
