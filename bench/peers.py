"""What an aiohttp / SQLAlchemy user would otherwise install, set up the way their docs say.

Kept here so the side-by-side comparisons in ``bench_aiohttp.py`` and
``bench_sqlalchemy.py`` are repeatable:

* prometheus_client, hand-rolled (there is no official aiohttp or SQLAlchemy
  integration): a request counter and a duration histogram labelled by method,
  route template and status; per statement, a counter and a histogram labelled
  by operation. Each peer gets its own registry: nothing is exported, as an app
  that is scraped rarely.
* OpenTelemetry: ``opentelemetry-instrumentation-aiohttp-server`` and
  ``opentelemetry-instrumentation-sqlalchemy`` with the SDK and an in-memory
  metric reader ("metrics only": the tracer is the API's no-op default), and
  the same with an SDK tracer provider recording every span into an in-memory
  exporter ("+ tracing").

The OTel packages are in the ``bench`` extra (``pip install -e '.[bench]'``).
``opentelemetry-instrumentation-sqlalchemy`` 0.66b1 instruments nothing on
SQLAlchemy >= 2.1 (it logs a dependency conflict and skips), so its runs need a
SQLAlchemy 2.0.x environment (see docs/benchmarks.md).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

_meter_provider: Any = None


def otel_meter_provider() -> Any:
    """The process's OTel SDK MeterProvider with an in-memory reader (set globally once, as apps do)."""
    global _meter_provider
    if _meter_provider is None:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        _meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        metrics.set_meter_provider(_meter_provider)
    return _meter_provider


def otel_tracer_provider() -> Any:
    """An SDK TracerProvider that records every span into an in-memory exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return provider


# ----------------------------------------------------------------- aiohttp
def prometheus_middleware() -> Any:
    """A prometheus_client middleware: requests and duration by method, route template and status."""
    from aiohttp import web

    registry = CollectorRegistry()
    labels = ("method", "route", "status")
    requests = Counter("http_requests", "HTTP requests.", labels, registry=registry)
    duration = Histogram("http_request_duration_seconds", "HTTP request duration.", labels, registry=registry)

    @web.middleware
    async def prometheus_metrics(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            values = (request.method, route, str(status))
            requests.labels(*values).inc()
            duration.labels(*values).observe(time.perf_counter() - started)

    return prometheus_metrics


def otel_aiohttp_application(tracing: bool) -> Any:
    """A ``web.Application`` built while ``AioHttpServerInstrumentor`` is active (how it instruments)."""
    from aiohttp import web
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

    otel_meter_provider()
    instrumentor = AioHttpServerInstrumentor()
    if tracing:
        instrumentor.instrument(tracer_provider=otel_tracer_provider())
    else:
        instrumentor.instrument()
    try:
        return web.Application()  # the instrumentor replaced the class with one adding its middleware
    finally:
        instrumentor.uninstrument()


# -------------------------------------------------------------- SQLAlchemy
def prometheus_listener(engine: Any) -> None:
    """prometheus_client on SQLAlchemy's cursor events: statements and duration by operation."""
    from sqlalchemy import event

    registry = CollectorRegistry()
    queries = Counter("db_queries", "SQL statements.", ("operation",), registry=registry)
    duration = Histogram("db_query_duration_seconds", "SQL statement duration.", ("operation",), registry=registry)

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("prometheus_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started = conn.info["prometheus_started"].pop()
        operation = statement.split(None, 1)[0].lower() if statement else "other"
        queries.labels(operation).inc()
        duration.labels(operation).observe(time.perf_counter() - started)


def otel_sqlalchemy(engine: Any, tracing: bool) -> bool:
    """Instrument ``engine`` with ``opentelemetry-instrumentation-sqlalchemy``; False if it refused."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    otel_meter_provider()
    kwargs: dict[str, Any] = {"engine": engine}
    if tracing:
        kwargs["tracer_provider"] = otel_tracer_provider()
    instrumentor = SQLAlchemyInstrumentor()
    result = instrumentor.instrument(**kwargs)
    instrumentor._is_instrumented_by_opentelemetry = False  # allow the next engine its own instrument() call
    return result is not None
