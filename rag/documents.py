"""The data that flows through ingestion and retrieval: sections, chunks, passages."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.cancel import CancelToken

# Where on a page something sits: (left, top, right, bottom) as fractions of the page's size.
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text from one place in a document: a PDF page, a Markdown section, a block.

    ``offset`` is where the text starts in the document's whole extracted text, so chunk
    offsets stay absolute across sections. Text read off a page image by text recognition
    has ``recognized``: each line's span in ``text`` and its box on the page.
    """

    text: str
    offset: int
    page: int | None = None
    heading: str | None = None
    recognized: tuple[tuple[int, int, Box], ...] = ()

    def box(self, start: int, end: int) -> Box | None:
        """The box around the recognized lines that ``text[start:end]`` falls on."""
        boxes = [box for lo, hi, box in self.recognized if lo < end and hi > start]
        if not boxes:
            return None
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@dataclass(slots=True)
class LoadResult:
    """What a loader is told (whether to recognize text on page images, when to stop, whom to
    tell of each page) and gives back besides its sections (pages, recognized pages, warnings)."""

    pages: int = 0
    warnings: list[str] = field(default_factory=list)
    recognized: list[int] = field(default_factory=list)
    recognize: bool = True
    cancel: CancelToken | None = None
    page_done: Callable[[int], None] | None = None

    def stopped(self) -> bool:
        """Whether the loader should stop before its next page."""
        return self.cancel is not None and self.cancel.cancelled

    def read(self, page: int) -> None:
        """Tell the listener that page ``page`` (1-based) has been read."""
        if self.page_done is not None:
            self.page_done(page)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document sized for the embedder, with where it came from."""

    text: str
    start: int
    end: int
    page: int | None
    heading: str | None
    index: int = 0
    box: Box | None = None  # where on the page, for text recognized from its image


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with its provenance and how it ranked."""

    chunk_id: str
    text: str
    path: Path
    page: int | None
    heading: str | None
    start: int
    end: int
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None
    box: Box | None = None

    @property
    def location(self) -> str:
        """Where the passage sits, for people: ``report.pdf, page 3``."""
        return place(self.path, self.page, self.heading, self.box is not None)


def union(a: Box | None, b: Box | None) -> Box | None:
    """The box around both (either may be missing)."""
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def place(path: Path, page: int | None, heading: str | None, recognized: bool = False) -> str:
    """The one way a passage's place is written: ``report.pdf, page 3, section Costs``, and
    ``scan.pdf, page 2, text recognized`` for text read off the page's image."""
    parts = [path.name]
    if page is not None:
        parts.append(f"page {page}")
    if heading:
        parts.append(f"section {heading}")
    if recognized:
        parts.append("text recognized")
    return ", ".join(parts)


def path_to_text(path: Path) -> str:
    """A path as text that survives JSON and Chroma: itself when valid UTF-8, else ``b64:...``.

    File names that are not valid UTF-8 exist on Linux; they must still be indexed and found.
    """
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "b64:" + base64.urlsafe_b64encode(raw).decode("ascii")


def text_to_path(text: str) -> Path:
    """The inverse of ``path_to_text``."""
    if text.startswith("b64:"):
        return Path(os.fsdecode(base64.urlsafe_b64decode(text[4:])))
    return Path(text)


def document_key(path: Path) -> str:
    """A stable id for a file path: the same file always maps to the same chunks."""
    return hashlib.sha1(os.fsencode(path)).hexdigest()[:20]


def display_path(path: Path) -> str:
    """A path for people, with undecodable bytes shown as escapes rather than failing."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")
