"""How the pages write sizes and times for people."""

from __future__ import annotations

from datetime import datetime

from ..units import amount, size

__all__ = ["amount", "size", "when"]


def when(moment: datetime | None, zone: bool = True) -> str:
    """A UTC time to the minute, as the tables show it (`zone`: say it is UTC)."""
    if moment is None:
        return "never"
    return moment.strftime("%Y-%m-%d %H:%M" + (" UTC" if zone else ""))
