"""Text recognition for pages that have no text layer: RapidOCR's PP-OCR models (Chinese and
English), which its wheel ships, so nothing is downloaded.

``recognize(image)`` gives the lines it read, in reading order, each with its box as
fractions of the image; ``page_section`` lays them out as a page's text, keeping where each
line sits so that a chunk can say where on the page it came from.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.documents import Box, Section

if TYPE_CHECKING:
    from PIL.Image import Image
    from rapidocr_onnxruntime import RapidOCR

# PDF pages are rendered at this resolution. The detector looks at the page shrunk to
# MAX_SIDE pixels, but each line it finds is read from the full-size image, so resolution
# helps reading while a larger detector input hurts it: bench/ocr.py measured both.
DPI = 300
MAX_SIDE = 2000
# A page whose text layer holds fewer characters than this is treated as having none.
MIN_LAYER_CHARS = 16

_engine: RapidOCR | None = None
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Line:
    """One line of recognized text and where it sits (fractions of the image's size)."""

    text: str
    box: Box
    confidence: float


def _get() -> RapidOCR:
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR(max_side_len=MAX_SIDE, print_verbose=False)
    return _engine


def recognize(image: Image) -> list[Line]:
    """The lines of text in ``image``, top to bottom and left to right."""
    import numpy as np

    rgb = image.convert("RGB")
    width, height = rgb.size
    with _lock:  # one engine per process; its sessions already use every core
        found, _ = _get()(np.asarray(rgb))
    lines = []
    for corners, text, confidence in found or []:
        xs = [float(x) for x, _ in corners]
        ys = [float(y) for _, y in corners]
        box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
        if text.strip():
            lines.append(Line(text.strip(), box, float(confidence)))
    return _reading_order(lines)


def _reading_order(lines: list[Line]) -> list[Line]:
    """Rows top to bottom (lines whose middles share a band), each row left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.box[1] + item.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows:
            last = rows[-1][0]
            if abs(middle - (last.box[1] + last.box[3]) / 2) < (last.box[3] - last.box[1]) / 2:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.box[0])]


def page_section(lines: Sequence[Line], offset: int, page: int | None) -> Section | None:
    """A page's recognized lines as one section: a line per row, a blank line where a gap
    wider than a line's height separates paragraphs. ``None`` when nothing was read."""
    if not lines:
        return None
    parts: list[str] = []
    spans: list[tuple[int, int, Box]] = []
    length = 0
    previous: Line | None = None
    for line in lines:
        if previous is not None:
            same_row = line.box[1] < (previous.box[1] + previous.box[3]) / 2 < line.box[3]
            gap = line.box[1] - previous.box[3]
            separator = " " if same_row else "\n\n" if gap > previous.box[3] - previous.box[1] else "\n"
            parts.append(separator)
            length += len(separator)
        spans.append((length, length + len(line.text), line.box))
        parts.append(line.text)
        length += len(line.text)
        previous = line
    text = "".join(parts) + "\n"
    return Section(text=text, offset=offset, page=page, recognized=tuple(spans))

