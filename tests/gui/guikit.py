"""Helpers shared by the desktop app's tests (imported as ``guikit``)."""

from __future__ import annotations

import os
from pathlib import Path

from sage_desktop.models import Business


def make_businesses(count: int, *, inactive_every: int = 97) -> list[Business]:
    """``count`` businesses shaped like an accountant's practice."""
    regions = ("GB", "IE", "CA")
    kinds = ("Bakery", "Garage", "Consulting", "Florist", "Dental", "Builders")
    result = []
    for n in range(count):
        result.append(
            Business(
                id=f"{n:08x}a1b2c3d4e5f6a7b8c9d0e1f2",
                name=f"{kinds[n % len(kinds)]} {n:05d} Ltd",
                region=regions[n % 3],
                active=n % inactive_every != inactive_every - 1,
                is_demo=n == 5,
                is_lead=n == 0,
            )
        )
    return result


def save_shot(widget: object, folder: Path, name: str) -> Path:
    """Save ``widget.grab()`` as ``name``.png, and into $SAGE_SHOTS if set."""
    path = folder / f"{name}.png"
    image = widget.grab()  # type: ignore[attr-defined]
    image.save(str(path))
    extra = os.environ.get("SAGE_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        image.save(str(Path(extra) / f"{name}.png"))
    return path
