"""PDF through pypdf: text per page, page numbers kept, encryption and damage told apart."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEmpty, DocumentEncrypted

log = logging.getLogger(__name__)


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
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DocumentCorrupt(path, str(exc) or type(exc).__name__) from exc


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """One section per page that has text; pages without a text layer are counted and skipped."""
    reader = _open(path)
    result.pages = len(reader.pages)
    offset = 0
    empty_pages: list[int] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - pypdf raises many types on a bad page; one page must not sink the file
            log.warning("%s page %d: %s", path, number, exc)
            result.warnings.append(f"page {number} could not be read ({type(exc).__name__})")
            continue
        if not text.strip():
            empty_pages.append(number)
            continue
        text = text.replace("\x00", "")
        if not text.endswith("\n"):
            text += "\n"
        yield Section(text=text, offset=offset, page=number)
        offset += len(text)
    if offset == 0:
        if result.pages == 0:
            raise DocumentEmpty(path, "the PDF has no pages")
        raise DocumentEmpty(path, "no text layer (scanned images?); text recognition is not supported")
    if empty_pages:
        result.warnings.append(f"{len(empty_pages)} page(s) without text: {_ranges(empty_pages)}")


def _ranges(numbers: list[int]) -> str:
    spans: list[str] = []
    first = prev = numbers[0]
    for n in numbers[1:] + [0]:
        if n != prev + 1:
            spans.append(str(first) if first == prev else f"{first}-{prev}")
            first = n
        prev = n
    return ", ".join(spans)
