"""The ops toolchain behind the ``netauto-statsd`` command: mapping, check, dashboards.

Tooling may import the runtime's declarations; the runtime never imports tooling.
Nothing here is on an app's hot path.
"""
