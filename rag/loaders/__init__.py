"""Loaders turn one file into sections of text with provenance.

``open_document(path)`` picks the loader by extension and checks the file before any
parsing; every failure is a ``DocumentError`` naming the file and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.documents import LoadResult, Section
from rag.errors import DocumentEmpty, DocumentUnreadable, DocumentUnsupported

Loader = Callable[[Path, LoadResult], Iterator[Section]]


def _pdf(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import pdf

    return pdf.load(path, result)


def _text(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import text

    return text.load(path, result)


def _markdown(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import markdown

    return markdown.load(path, result)


def _html(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import html

    return html.load(path, result)


def _docx(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import docx

    return docx.load(path, result)


def _xlsx(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import sheets

    return sheets.load_xlsx(path, result)


def _csv(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import sheets

    return sheets.load_csv(path, result)


def _image(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import images

    return images.load(path, result)


def _pptx(path: Path, result: LoadResult) -> Iterator[Section]:
    from rag.loaders import slides

    return slides.load(path, result)


# Imports stay inside the functions so that importing this module stays cheap.
LOADERS: dict[str, Loader] = {
    ".pdf": _pdf,
    ".txt": _text,
    ".text": _text,
    ".log": _text,
    ".rst": _text,
    ".md": _markdown,
    ".markdown": _markdown,
    ".html": _html,
    ".htm": _html,
    ".xhtml": _html,
    ".docx": _docx,
    ".xlsx": _xlsx,
    ".xlsm": _xlsx,
    ".csv": _csv,
    ".tsv": _csv,
    ".pptx": _pptx,
    ".png": _image,
    ".jpg": _image,
    ".jpeg": _image,
    ".tif": _image,
    ".tiff": _image,
    ".bmp": _image,
    ".webp": _image,
}


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def ole_container(path: Path) -> bool:
    """Whether an Office file is an OLE container: with a .docx, .xlsx or .pptx name, that
    is a password-protected document (or an old binary format)."""
    with path.open("rb") as f:
        return f.read(8) == _OLE_MAGIC


def is_supported(path: Path) -> bool:
    """Whether a loader exists for this file's extension."""
    return path.suffix.lower() in LOADERS


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Yield the file's sections; raise a ``DocumentError`` when it cannot be read at all."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DocumentUnsupported(path, f"unsupported file type {path.suffix or '(none)'}")
    try:
        size = path.stat().st_size
        if not os.access(path, os.R_OK):
            raise PermissionError("permission denied")
    except FileNotFoundError as exc:
        raise DocumentUnreadable(path, "the file does not exist") from exc
    except OSError as exc:
        raise DocumentUnreadable(path, exc.strerror or str(exc)) from exc
    if path.is_dir():
        raise DocumentUnreadable(path, "it is a folder")
    if size == 0:
        raise DocumentEmpty(path, "the file is empty")
    produced = False
    try:
        for section in loader(path, result):
            if section.text.strip():
                produced = True
                yield section
    except PermissionError as exc:
        raise DocumentUnreadable(path, "permission denied") from exc
    except OSError as exc:
        raise DocumentUnreadable(path, exc.strerror or str(exc)) from exc
    if not produced and not result.stopped():
        raise DocumentEmpty(path)
