"""SQLAlchemy statements and connection pools (the seed's PromEx Ecto plugin)."""

from __future__ import annotations

from netauto_statsd.catalog.model import Tag
from netauto_statsd.catalog.registry import counter, gauge, histogram
from netauto_statsd.catalog.shared import DB_SECONDS, EXCEPTION, OPERATION, POOL, TABLE

AREA = "db"

QUERIES = counter(
    "db.query",
    tags=(POOL, OPERATION, TABLE),
    help="SQL statements executed.",
    prometheus_name="netauto_db_queries_total",
    area=AREA,
)
QUERY_DURATION = histogram(
    "db.query.duration",
    tags=(POOL, OPERATION, TABLE),
    unit="seconds",
    help="SQL statement execution time.",
    prometheus_name="netauto_db_query_duration_seconds",
    buckets=DB_SECONDS,
    area=AREA,
)
ERRORS = counter(
    "db.error",
    tags=(POOL, OPERATION, EXCEPTION),
    help="SQL statements that raised, by exception class.",
    prometheus_name="netauto_db_errors_total",
    max_combinations=200,
    area=AREA,
)
POOL_CONNECTIONS = gauge(
    "db.pool.connections",
    tags=(POOL, Tag("state", ("checked_out", "overflow", "size"), "pool figure")),
    help="Connection pool: checked out, overflow in use, configured size.",
    prometheus_name="netauto_db_pool_connections",
    ttl="2m",
    area=AREA,
)
CHECKOUT_WAIT = histogram(
    "db.pool.checkout_wait",
    tags=(POOL,),
    unit="seconds",
    help="Time to check a connection out of the pool.",
    prometheus_name="netauto_db_pool_checkout_wait_seconds",
    buckets=DB_SECONDS,
    area=AREA,
)
INVALIDATED = counter(
    "db.pool.invalidated",
    tags=(POOL,),
    help="Pooled connections invalidated.",
    prometheus_name="netauto_db_pool_invalidations_total",
    area=AREA,
)
