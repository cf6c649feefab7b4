"""The ops toolchain behind the ``netauto-statsd`` command: mapping, check, dashboards.

Tooling may import the runtime's declarations; the runtime never imports tooling.
Nothing here is on an app's hot path. Where things live:

- which catalog is judged: :mod:`.catalog_source` (``--catalog``, ``NETAUTO_STATSD_CATALOG``, pyproject.toml);
- the mapping: :mod:`.mapping` (render), :mod:`.mapping_update` (``--diff`` / ``--update``),
  :mod:`.mapping_lint` (strict YAML lint);
- ``check``: :mod:`.check` (the referee), :mod:`.contract` (the catalog's contract),
  :mod:`.knobs` (the operators' knobs), :mod:`.live_check` (the real wire into a real exporter),
  :mod:`.dashboard_check` + :mod:`.promql` (dashboard and alert queries), :mod:`.findings`;
- shared knowledge: :mod:`.exporter` (the one model of statsd_exporter), :mod:`.series`
  (the series the stack exposes);
- :mod:`.dashboards` (the Grafana generator, ``dashboards`` extra).
"""
