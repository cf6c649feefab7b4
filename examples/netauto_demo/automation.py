"""The NetAuto "Automation" context: create runs and append chunks, with the throughput hooks.

``create_run`` and ``append_chunk`` are where a NetAuto app creates runs and
stores their output: each calls the matching ``netauto_statsd`` throughput hook
after its own work succeeded.
"""

from __future__ import annotations

from sqlalchemy import func, select

from netauto_demo.devices import PROTOCOLS, SITES, device_name
from netauto_demo.models import Chunk, Device, Run, get_engine, session, utcnow
from netauto_statsd import chunk_appended, run_created, run_finished


def seed_devices(count: int) -> None:
    """Make sure ``count`` demo devices exist (idempotent)."""
    with session() as db, db.begin():
        existing = set(db.scalars(select(Device.name)))
        for index in range(count):
            name = device_name(index)
            if name not in existing:
                db.add(Device(name=name, site=SITES[index % len(SITES)], protocol=PROTOCOLS[index % len(PROTOCOLS)]))


def add_device(name: str, site: str, protocol: str) -> Device:
    """Register a device; a duplicate name raises sqlalchemy's IntegrityError (the unique constraint)."""
    with session() as db, db.begin():
        device = Device(name=name, site=site, protocol=protocol)
        db.add(device)
    return device


def list_devices() -> list[Device]:
    """Every device, by id."""
    with session() as db:
        return list(db.scalars(select(Device).order_by(Device.id)))


def create_run(device_id: int, command: str) -> Run:
    """Create a queued run for ``device_id`` (raises LookupError for an unknown device)."""
    with session() as db, db.begin():
        device = db.get(Device, device_id)
        if device is None:
            raise LookupError(f"no device {device_id}")
        run = Run(device_id=device.id, command=command)
        db.add(run)
        db.flush()
    run_created(site=device.site, protocol=device.protocol, device=device.name)
    return run


def create_audit_runs(command: str) -> list[int]:
    """One run of ``command`` per device (a fleet audit); returns the run ids."""
    return [create_run(device.id, command).id for device in list_devices()]


def invalidate_one_connection() -> None:
    """Simulate a database failover: the pooled connection in hand is invalidated (and replaced)."""
    with get_engine().connect() as connection:
        connection.invalidate()


def append_chunk(run: Run, device: Device, seq: int, data: bytes) -> None:
    """Store one output chunk of ``run``."""
    with session() as db, db.begin():
        db.add(Chunk(run_id=run.id, seq=seq, data=data))
    chunk_appended(site=device.site, protocol=device.protocol, size=len(data))


def set_status(run_id: int, status: str) -> None:
    """Mark a run running / finished."""
    with session() as db, db.begin():
        run = db.get(Run, run_id)
        if run is not None:
            run.status = status


def finish_run(run: Run, device: Device, status: str, output_bytes: int) -> None:
    """Record how a run ended and its total output."""
    with session() as db, db.begin():
        stored = db.get(Run, run.id)
        if stored is not None:
            stored.status, stored.output_bytes, stored.finished_at = status, output_bytes, utcnow()
    run_finished(site=device.site, protocol=device.protocol, total_bytes=output_bytes)


def get_run(run_id: int) -> Run | None:
    """One run, or None."""
    with session() as db:
        return db.get(Run, run_id)


def chunks_after(run_id: int, seq: int) -> list[Chunk]:
    """Chunks of ``run_id`` with a sequence number above ``seq``, in order."""
    with session() as db:
        return list(db.scalars(select(Chunk).where(Chunk.run_id == run_id, Chunk.seq > seq).order_by(Chunk.seq)))


def run_counts() -> dict[str, int]:
    """Number of runs per status."""
    with session() as db:
        return {status: count for status, count in db.execute(select(Run.status, func.count()).group_by(Run.status))}
