"""The application icon, drawn in code so every size is crisp.

Two linked rings on Sage-like green: a connection. ``python -m
sage_desktop.ui.icon resources/`` writes the SVG and the PNGs (16 to 256
px) that packaging and the desktop entry use; the running app draws the
same shapes with QPainter, so it needs no file at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPen, QPixmap

SIZES = (16, 24, 32, 48, 64, 128, 256)
GREEN = "#00A650"
DARK_GREEN = "#007A3D"

SVG = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"
     viewBox="0 0 256 256">
  <title>sage-desktop</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="{GREEN}"/>
      <stop offset="1" stop-color="{DARK_GREEN}"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="52" fill="url(#bg)"/>
  <g fill="none" stroke="#FFFFFF" stroke-width="18">
    <rect x="42" y="128" width="112" height="60" rx="30"
          transform="rotate(-45 98 158)"/>
    <rect x="102" y="68" width="112" height="60" rx="30"
          transform="rotate(-45 158 98)"/>
  </g>
</svg>
"""


def draw_icon(size: int) -> QPixmap:
    """The icon at ``size`` pixels (same geometry as :data:`SVG`)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 256, size / 256)
    painter.setPen(Qt.PenStyle.NoPen)
    gradient = QLinearGradient(0, 0, 0, 256)
    gradient.setColorAt(0, QColor(GREEN))
    gradient.setColorAt(1, QColor(DARK_GREEN))
    painter.setBrush(gradient)
    painter.drawRoundedRect(QRectF(8, 8, 240, 240), 52, 52)
    pen = QPen(QColor("#FFFFFF"))
    pen.setWidthF(18 if size >= 32 else 24)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for cx, cy in ((98.0, 158.0), (158.0, 98.0)):
        painter.save()
        painter.translate(cx, cy)
        painter.rotate(-45)
        painter.drawRoundedRect(QRectF(-56, -30, 112, 60), 30, 30)
        painter.restore()
    painter.end()
    return pixmap


def app_icon() -> QIcon:
    """The window icon with a pixmap per size, for high-DPI screens."""
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(draw_icon(size))
    return icon


def write_resources(folder: Path) -> list[Path]:
    """Write sage-desktop.svg and icons/sage-desktop-<size>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "sage-desktop.svg"]
    written[0].write_text(SVG, encoding="utf-8")
    icons = folder / "icons"
    icons.mkdir(exist_ok=True)
    for size in SIZES:
        path = icons / f"sage-desktop-{size}.png"
        if not draw_icon(size).save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        written.append(path)
    return written


if __name__ == "__main__":
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    import sage_desktop.ui  # noqa: F401

    _app = QGuiApplication(sys.argv[:1])
    for written_path in write_resources(
        Path(sys.argv[1] if len(sys.argv) > 1 else "resources")
    ):
        print(written_path)
