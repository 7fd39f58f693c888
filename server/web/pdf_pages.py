"""A cited PDF page for the browser: the page as a PNG rendered with PDFium from the indexed file,
and where the cited passage stands on it (``archivist.pdf_marks``), as fractions of the page so
that the page's script can lay the marks over the image at any zoom."""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archivist.pdf_marks import passage_rects
from rag.errors import BadCall
from rag.indexing.loaders.pdfium_lock import PDFIUM

if TYPE_CHECKING:
    import pypdfium2  # type: ignore[import-untyped]

_SCALE = 1.5  # 108 dpi: sharp at 100% and readable at 200% zoom, ~100 KB a text page
# A page may declare any size (PDF allows 200 inches a side, user units more): a poster or a hostile
# file is shown smaller rather than rendered into gigabytes while every other page waits for PDFium.
_LONGEST_SIDE = 3000  # pixels


@dataclass(frozen=True)
class PageMarks:
    """The page's size in points, and each marked rectangle as (left, top, right, bottom) fractions of it."""

    width: float
    height: float
    rects: list[tuple[float, float, float, float]]


def page_png(path: Path, page: int) -> bytes:
    """Page ``page`` (from 1) of the PDF at ``path`` as PNG bytes."""

    with PDFIUM:
        document = _open(path)
        try:
            if not 1 <= page <= len(document):
                raise BadCall(f"{path.name} has no page {page}")
            shown = document[page - 1]
            image = shown.render(scale=_scale(*shown.get_size())).to_pil()
            shown.close()
        finally:
            document.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def page_marks(path: Path, page: int, passage: str) -> PageMarks:
    """Where ``passage`` stands on page ``page`` (from 1) of the PDF at ``path``."""
    with PDFIUM:
        document = _open(path)
        try:
            if not 1 <= page <= len(document):
                raise BadCall(f"{path.name} has no page {page}")
            width, height = document[page - 1].get_size()  # as shown: the crop box, rotation applied
            if not (width > 0 and height > 0):  # a page of no size: nothing to mark a fraction of
                raise BadCall(f"{path.name} has a page {page} of no size")
        finally:
            document.close()
        rects = passage_rects(path, page - 1, passage)
    return PageMarks(width, height, [(left / width, top / height, right / width, bottom / height)
                                     for left, top, right, bottom in rects])


def _scale(width: float, height: float) -> float:
    """The scale to render a page of ``width`` by ``height`` points at: ``_SCALE``, or less for a huge one."""
    return min(_SCALE, _LONGEST_SIDE / max(width, height, 1.0))


def _open(path: Path) -> "pypdfium2.PdfDocument":
    import pypdfium2  # type: ignore[import-untyped]

    try:
        return pypdfium2.PdfDocument(path)
    except (pypdfium2.PdfiumError, OSError) as exc:
        raise BadCall(f"{path.name} cannot be read: {exc}") from None
