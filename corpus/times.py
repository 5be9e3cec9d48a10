"""Times as programs read them: ISO 8601 in UTC, to the second."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(epoch: float | None) -> str | None:
    """``1796289667.2`` -> ``"2026-12-03T09:21:07+00:00"``; None stays None."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")
