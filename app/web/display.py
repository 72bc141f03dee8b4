"""How the pages write sizes and times for people."""

from __future__ import annotations

from datetime import datetime

from ..units import amount, size

__all__ = ["amount", "kind", "size", "when"]


def when(moment: datetime | None, zone: bool = True) -> str:
    """A UTC time to the minute, as the tables show it (`zone`: say it is UTC)."""
    if moment is None:
        return "never"
    return moment.strftime("%Y-%m-%d %H:%M" + (" UTC" if zone else ""))


def kind(filename: str) -> str:
    """A file's kind as its placeholder shows it: its extension in capitals (at most four
    letters), or FILE."""
    stem, dot, extension = filename.rpartition(".")
    if not dot or not stem or not extension.isalnum():
        return "FILE"
    return extension[:4].upper()
