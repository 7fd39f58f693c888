"""The data that flows through ingestion and retrieval: sections, chunks, passages."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text from one place in a document: a PDF page, a Markdown section, a block.

    ``offset`` is where the text starts in the document's whole extracted text, so chunk
    offsets stay absolute across sections.
    """

    text: str
    offset: int
    page: int | None = None
    heading: str | None = None


@dataclass(slots=True)
class LoadResult:
    """What a loader returns besides its sections: a count and any warnings."""

    pages: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document sized for the embedder, with where it came from."""

    text: str
    start: int
    end: int
    page: int | None
    heading: str | None
    index: int = 0


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

    @property
    def location(self) -> str:
        """Where the passage sits, for people: ``report.pdf, page 3``."""
        return place(self.path, self.page, self.heading)


def place(path: Path, page: int | None, heading: str | None) -> str:
    """The one way a passage's place is written: ``report.pdf, page 3, section Costs``."""
    parts = [path.name]
    if page is not None:
        parts.append(f"page {page}")
    if heading:
        parts.append(f"section {heading}")
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
