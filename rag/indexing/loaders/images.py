"""Images (PNG, JPEG, TIFF with all its pages, BMP, WebP): their text recognized, a page per frame."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEmpty, DocumentTooLarge, DocumentUnsupported
from rag.indexing.loaders import ocr
from rag.indexing.loaders.pdf import ranges

# Larger images are refused up front: decoding one would take gigabytes.
MAX_PIXELS = 100_000_000


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """One section per frame with text; a frame's lines keep their boxes."""
    if not result.recognize:
        raise DocumentUnsupported(path, "an image, and text recognition is turned off in Settings")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DocumentTooLarge(path, "the image has more pixels than can be decoded safely") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DocumentCorrupt(path, f"not a readable image ({exc})") from exc
    with image:
        result.pages = getattr(image, "n_frames", 1)
        offset = 0
        blank: list[int] = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if result.stopped():
                return
            width, height = frame.size
            if width * height > MAX_PIXELS:
                raise DocumentTooLarge(path, f"page {number} is {width} × {height} pixels; the limit is {MAX_PIXELS:,}")
            try:
                upright = ImageOps.exif_transpose(frame.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise DocumentCorrupt(path, f"page {number} cannot be decoded ({exc})") from exc
            section = ocr.page_section(ocr.recognize(upright), offset, number if result.pages > 1 else None)
            result.read(number)
            if section is None:
                blank.append(number)
                continue
            result.recognized.append(number)
            yield section
            offset += len(section.text)
    if offset == 0:
        raise DocumentEmpty(path, "no text could be recognized in the image")
    if blank:
        result.warnings.append(f"{len(blank)} page(s) without text: {ranges(blank)}")
