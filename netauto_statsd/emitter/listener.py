"""The typed hook through which the test recorder (or any observer) sees every accepted emission."""

from __future__ import annotations

from typing import Protocol


class Listener(Protocol):
    """Receives every accepted emission, tags normalised as they will be sent."""

    def record(self, name: str, type: str, value: float, tags: dict[str, str], relative: bool) -> None:
        """One emission: ``relative`` is true for a gauge move (``gauge_add`` / ``Gauge.add``); always passed."""
