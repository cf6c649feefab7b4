"""Demo data model: devices (site, protocol), runs and their output chunks, on SQLAlchemy.

SQLite by default, any database through ``DATABASE_URL``. :func:`get_engine` is
fork-aware: a forked RQ work horse never reuses its parent's pooled
connections (it disposes the inherited pool without closing the parent's
sockets, SQLAlchemy's documented pattern) and the engine is instrumented with
:func:`netauto_statsd.integrations.sqlalchemy.instrument_engine`.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from netauto_statsd.integrations.sqlalchemy import instrument_engine

DEFAULT_URL = "sqlite:///netauto-demo.db"
TABLES = ("devices", "runs", "chunks")


def utcnow() -> datetime:
    """Timezone-aware now, for timestamps."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the demo models."""


class Device(Base):
    """A network device, reached at a site over a protocol."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    site: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(16))


class Run(Base):
    """One execution of a command on a device."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    command: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    output_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Chunk(Base):
    """A piece of a run's output, in order."""

    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid = 0


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine() -> Engine:
    """The process's engine (created on first use, fresh pool after a fork)."""
    global _engine, _engine_pid
    with _lock:
        if _engine is None:
            url = os.environ.get("DATABASE_URL", DEFAULT_URL)
            is_sqlite = url.startswith("sqlite")
            engine = create_engine(url, connect_args={"timeout": 30} if is_sqlite else {})
            if is_sqlite:
                event.listen(engine, "connect", _sqlite_pragmas)
            instrument_engine(engine, "default", tables=TABLES)
            Base.metadata.create_all(engine)
            _engine, _engine_pid = engine, os.getpid()
        elif _engine_pid != os.getpid():
            _engine.dispose(close=False)  # forked: never share the parent's connections
            _engine_pid = os.getpid()
        return _engine


def session() -> Session:
    """A new ORM session on :func:`get_engine`."""
    return sessionmaker(get_engine(), expire_on_commit=False)()
