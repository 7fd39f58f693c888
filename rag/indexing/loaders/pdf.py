"""PDF: text per page through pypdf, page numbers kept, encryption and damage told apart.

Ruled tables are read as tables (``rag.indexing.loaders.pdf_tables``). A file pypdf cannot open gets a
second, lenient read through PDFium before it is called damaged. A page without a text layer
(a scan) is rendered by PDFium and its text recognized (``rag.indexing.loaders.ocr``), unless
recognition is turned off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEmpty, DocumentEncrypted
from rag.indexing.loaders import ocr, pdf_tables
from rag.indexing.loaders.pdfium_lock import PDFIUM

if TYPE_CHECKING:
    import pypdfium2

log = logging.getLogger(__name__)

# A page larger than this many pixels at ocr.DPI (a poster, a drawing) is rendered smaller.
_MAX_PIXELS = 40_000_000


def _open(path: Path) -> PdfReader:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password only to restrict printing.
            try:
                if not reader.decrypt(""):
                    raise DocumentEncrypted(path)
            except (FileNotDecryptedError, NotImplementedError) as exc:
                raise DocumentEncrypted(path) from exc
            except DependencyError as exc:
                raise DocumentCorrupt(path, f"unsupported encryption: {exc}") from exc
        _ = len(reader.pages)
        return reader
    except DocumentEncrypted:
        raise
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DocumentCorrupt(path, str(exc) or type(exc).__name__) from exc


def _open_pdfium(path: Path) -> pypdfium2.PdfDocument:
    import pypdfium2

    try:
        with PDFIUM:
            return pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentEncrypted(path) from exc
        raise DocumentCorrupt(path, str(exc)) from exc


def _pypdf_pages(reader: PdfReader, path: Path, result: LoadResult) -> Iterator[tuple[int, str | None]]:
    for number, page in enumerate(reader.pages, start=1):
        try:
            yield number, page.extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - pypdf raises many types on a bad page; one page must not sink the file
            log.warning("%s page %d: %s", path, number, exc)
            result.warnings.append(f"page {number} could not be read ({type(exc).__name__})")
            yield number, None


def _pdfium_pages(document: pypdfium2.PdfDocument) -> Iterator[tuple[int, str | None]]:
    with PDFIUM:
        count = len(document)
    for index in range(count):
        with PDFIUM:
            page = document[index]
            text = page.get_textpage()
            try:
                read = text.get_text_range().replace(pdf_tables.SOFT_HYPHEN, "")
            finally:
                text.close()
                page.close()
        yield index + 1, read


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """One section per page that has text, read from its text layer or recognized from its
    image; pages with neither are counted and named in a warning."""
    rendered: pypdfium2.PdfDocument | None = None
    try:
        reader = _open(path)
        result.pages = len(reader.pages)
        pages = _pypdf_pages(reader, path, result)
    except DocumentCorrupt as strict:
        try:
            rendered = _open_pdfium(path)
        except DocumentCorrupt as lenient:
            raise DocumentCorrupt(path, f"{strict.detail}; a lenient read failed too: {lenient.detail}") from strict
        with PDFIUM:
            result.pages = len(rendered)
        result.warnings.append(f"read leniently, the strict reader failed ({strict.detail})")
        pages = _pdfium_pages(rendered)
    opened = [rendered] if rendered is not None else []

    def pdfium() -> pypdfium2.PdfDocument:  # opened only when a page needs its image
        if not opened:
            opened.append(_open_pdfium(path))
        return opened[0]

    ruled = pdf_tables.Reader(path)
    try:
        yield from _sections(path, pages, result, pdfium, ruled)
    finally:
        ruled.close()
        with PDFIUM:
            for document in opened:
                document.close()


def _sections(
    path: Path,
    pages: Iterator[tuple[int, str | None]],
    result: LoadResult,
    pdfium: Callable[[], pypdfium2.PdfDocument],
    ruled: pdf_tables.Reader,
) -> Iterator[Section]:
    offset = 0
    empty_pages: list[int] = []
    for number, text in pages:
        if result.stopped():
            return
        if text is None:
            continue
        text = text.replace("\x00", "")
        if text.strip():
            text = _with_tables(pdfium(), number, ruled) or text
        layer = Section(text=text if text.endswith("\n") else text + "\n", offset=offset, page=number)
        section = layer if text.strip() else None
        layer_chars = len("".join(text.split()))
        if result.recognize and layer_chars < ocr.MIN_LAYER_CHARS:
            recognized = _recognize(pdfium(), number, offset)
            # A short text layer (a title, a page number stamped on a scan) gives way to more.
            if recognized is not None and len("".join(recognized.text.split())) > layer_chars:
                section = recognized
                result.recognized.append(number)
        result.read(number)
        if section is None:
            empty_pages.append(number)
            continue
        yield section
        offset += len(section.text)
    if offset == 0:
        if result.pages == 0:
            raise DocumentEmpty(path, "the PDF has no pages")
        if not result.recognize:
            raise DocumentEmpty(path, "no text layer (scanned images?); text recognition is turned off in Settings")
        raise DocumentEmpty(path, "no text layer, and no text could be recognized on its pages")
    if empty_pages:
        result.warnings.append(f"{len(empty_pages)} page(s) without text: {ranges(empty_pages)}")


def _with_tables(document: pypdfium2.PdfDocument, number: int, ruled: pdf_tables.Reader) -> str | None:
    """Page ``number``'s text with its tables as rows, if PDFium sees rules that could bound cells."""
    with PDFIUM:
        page = document[number - 1]
        rules = pdf_tables.has_rules(page)
    try:
        return ruled.page_text(number, page) if rules else None  # pdfminer's slow part runs unlocked
    finally:
        with PDFIUM:
            page.close()


def _recognize(document: pypdfium2.PdfDocument, number: int, offset: int) -> Section | None:
    """The text recognized on page ``number``'s image, rendered at ``ocr.DPI``."""
    with PDFIUM:
        page = document[number - 1]
        try:
            width, height = page.get_size()  # in points
            scale = ocr.DPI / 72
            scale = min(scale, math.sqrt(_MAX_PIXELS / max(1.0, width * height)))
            image = page.render(scale=scale).to_pil()
        finally:
            page.close()
    return ocr.page_section(ocr.recognize(image), offset, number)


def ranges(numbers: list[int]) -> str:
    """``1-3, 7`` for [1, 2, 3, 7]."""
    spans: list[str] = []
    first = prev = numbers[0]
    for n in numbers[1:] + [0]:
        if n != prev + 1:
            spans.append(str(first) if first == prev else f"{first}-{prev}")
            first = n
        prev = n
    return ", ".join(spans)
