"""How quantities read in reports and cards: one formatter of byte counts."""

from __future__ import annotations

__all__ = ["human_bytes"]


def human_bytes(size: float) -> str:
    """``size`` bytes in decimal units for people: ``"512 B"``, ``"1.5 MB"``, ``"2.0 TB"`` (TB at most)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
