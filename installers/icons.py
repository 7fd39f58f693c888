"""Render resources/icons/archivist.svg into the icon formats the packages need.

    python installers/icons.py        (writes windows/archivist.ico, macos/archivist.icns, linux/archivist.png)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(size: int) -> bytes:
    """The SVG drawn at ``size`` pixels square, as PNG bytes (Qt's SVG renderer, no display needed)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    QGuiApplication.instance() or QGuiApplication(["icons", "-platform", "offscreen"])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    QSvgRenderer(str(HERE.parent / "resources" / "icons" / "archivist.svg")).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def main() -> int:
    from PIL import Image

    big = Image.open(io.BytesIO(render(1024)))
    (HERE / "linux" / "archivist.png").write_bytes(render(256))
    big.save(HERE / "windows" / "archivist.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    big.save(HERE / "macos" / "archivist.icns")
    print("icons written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
