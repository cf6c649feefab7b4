"""Every generated dashboard shows the lifecycle annotations (netauto_statsd.annotations) as "Deploys"."""

from __future__ import annotations

from netauto_statsd.annotations import LIFECYCLE_TAGS
from netauto_statsd.tooling.dashboards import DEFAULT_DIR, load_dashboards
from tests.support import ROOT


def test_every_generated_dashboard_shows_the_lifecycle_annotations() -> None:
    for name, board in load_dashboards(ROOT / DEFAULT_DIR).items():
        queries = [q for q in board["annotations"]["list"] if q.get("name") == "Deploys"]
        assert len(queries) == 1, name
        query = queries[0]
        assert query["datasource"] == {"type": "grafana", "uid": "-- Grafana --"}
        assert query["enable"] is True and query["hide"] is False
        assert query["target"]["type"] == "tags"
        assert query["target"]["tags"] == list(LIFECYCLE_TAGS)
        assert query["target"]["matchAny"] is False, "every tag must match: only lifecycle annotations"
