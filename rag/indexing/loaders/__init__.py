"""Loaders turn one file into sections of text with provenance.

``load(path, result)`` picks the loader by extension and checks the file before any
parsing; every failure is a ``DocumentError`` naming the file and the reason.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.documents import LoadResult, Section
from rag.errors import DocumentEmpty, DocumentUnreadable, DocumentUnsupported

# Each extension's loader, as "module:function" in this package: imported on first use, so
# that importing this module stays cheap.
LOADERS: dict[str, str] = {
    ".pdf": "pdf:load",
    **dict.fromkeys((".txt", ".text", ".log", ".rst"), "text:load"),
    **dict.fromkeys((".md", ".markdown"), "markdown:load"),
    **dict.fromkeys((".html", ".htm", ".xhtml"), "html:load"),
    ".docx": "docx:load",
    **dict.fromkeys((".xlsx", ".xlsm"), "sheets:load_xlsx"),
    **dict.fromkeys((".csv", ".tsv"), "sheets:load_csv"),
    ".pptx": "slides:load",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"), "images:load"),
}


def _loader(name: str) -> Callable[[Path, LoadResult], Iterator[Section]]:
    module, function = name.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


def is_supported(path: Path) -> bool:
    """Whether a loader exists for this file's extension."""
    return path.suffix.lower() in LOADERS


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Yield the file's sections; raise a ``DocumentError`` when it cannot be read at all."""
    name = LOADERS.get(path.suffix.lower())
    if name is None:
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
        for section in _loader(name)(path, result):
            if section.text.strip():
                produced = True
                yield section
    except PermissionError as exc:
        raise DocumentUnreadable(path, "permission denied") from exc
    except OSError as exc:
        raise DocumentUnreadable(path, exc.strerror or str(exc)) from exc
    if not produced and not result.stopped():
        raise DocumentEmpty(path)
