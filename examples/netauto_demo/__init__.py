"""The reference NetAuto demo: every layer instrumented exactly as a user would do it.

``models`` (SQLAlchemy: devices, runs, chunks), ``automation`` (create_run /
append_chunk with the throughput hooks), ``devices`` (simulated devices),
``jobs`` (the RQ job that runs a device run under ``runner_lifecycle``),
``app`` (aiohttp API and the websocket live view), ``load`` (the load
generator) and ``main`` (``netauto-statsd demo``). Needs the ``demo`` extra.
"""
