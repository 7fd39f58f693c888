"""Word documents through python-docx: paragraphs and tables in body order, headings kept."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEncrypted
from rag.indexing.loaders import tables
from rag.indexing.loaders.office import ole_container


def _heading_level(paragraph: Paragraph) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name == "Title":
        return 1
    if name.startswith("Heading "):
        digits = name.removeprefix("Heading ").strip()
        return int(digits) if digits.isdigit() else None
    return None


def _open(path: Path) -> docx.document.Document:
    if ole_container(path):
        # An OLE container with a .docx name is a password-protected document (or a .doc).
        raise DocumentEncrypted(path)
    try:
        return docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentCorrupt(path, str(exc) or type(exc).__name__) from exc


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Sections of a DOCX file, a new one at every heading."""
    document = _open(path)
    trail: list[tuple[int, str]] = []
    parts: list[str] = []
    offset = 0
    heading: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            # python-docx gives a merged cell once per grid cell it spans: each row keeps its value.
            parts.extend(tables.render([cell.text for cell in row.cells] for row in block.rows))
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _heading_level(block)
        if level is not None:
            if parts:
                body = "\n\n".join(parts) + "\n\n"
                yield Section(text=body, offset=offset, heading=heading)
                offset += len(body)
                parts = []
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, text)]
            heading = " › ".join(t for _, t in trail)
        parts.append(text)
    if parts:
        yield Section(text="\n\n".join(parts) + "\n", offset=offset, heading=heading)

