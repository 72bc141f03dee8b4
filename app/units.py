"""Sizes written for people, one way everywhere: binary units (KiB, MiB), as settings mean."""

from __future__ import annotations

UNITS = ("KiB", "MiB", "GiB", "TiB")


def size(count: int | None) -> str:
    """A byte count in human units: 512 B, 1.5 KiB, 12.5 MiB."""
    if count is None:
        return ""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in UNITS:
        value /= 1024
        if value < 1024 or unit == UNITS[-1]:
            return f"{amount(value)} {unit}"
    raise AssertionError("unreachable")


def amount(count: int | float) -> str:
    """A number to one decimal, as people write it: 12.5, 1,000 (no .0 on whole numbers)."""
    rounded = round(float(count), 1)
    return f"{rounded:,.0f}" if rounded == int(rounded) else f"{rounded:,.1f}"
