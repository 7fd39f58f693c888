"""PowerPoint decks through python-pptx: one page per slide, title as heading, tables row by
row, speaker notes after the slide's own text."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEncrypted
from rag.indexing.loaders import tables
from rag.indexing.loaders.office import ole_container


def _shape_lines(shape) -> Iterator[str]:  # noqa: ANN001 - python-pptx shapes are untyped
    if shape.has_text_frame:
        for paragraph in shape.text_frame.paragraphs:
            text = "".join(run.text for run in paragraph.runs).strip()
            if text:
                yield text
    if getattr(shape, "has_table", False) and shape.has_table:
        yield from tables.render([[cell.text for cell in row.cells] for row in shape.table.rows])
    if shape.shape_type is not None and getattr(shape, "shapes", None) is not None:  # a group
        for inner in shape.shapes:
            yield from _shape_lines(inner)


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    if ole_container(path):
        raise DocumentEncrypted(path)
    try:
        deck = Presentation(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentCorrupt(path, str(exc) or type(exc).__name__) from exc
    offset = 0
    for number, slide in enumerate(deck.slides, start=1):
        result.pages += 1
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        lines = [line for shape in slide.shapes for line in _shape_lines(shape)]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                lines.append(f"Speaker notes: {' '.join(notes.split())}")
        if not lines:
            continue
        text = "\n".join(lines) + "\n"
        yield Section(text, offset, page=number, heading=title or None)
        offset += len(text)
