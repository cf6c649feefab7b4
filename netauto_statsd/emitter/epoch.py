"""The process-wide emitter's epoch: bound metric children re-resolve when it changes.

It changes when the process-wide emitter is replaced (:func:`configure`, the
test recorder), when an emitter's listener changes, and in a forked child. A
bound child compares one module attribute per call (``is``), nothing more.
"""

from __future__ import annotations

#: Replaced (never mutated) on every change; compared by identity.
current: object = object()


def bump() -> None:
    """Start a new epoch: every bound child resolves again on its next call."""
    global current
    current = object()
