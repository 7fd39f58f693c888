"""Markdown, split into sections at its headings so each chunk knows its heading trail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from rag.documents import LoadResult, Section
from rag.indexing.loaders.text import decoded_blocks

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class _Trail:
    """The headings above the current line, as ``Guide › Install › Linux``."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        self.levels = [(lvl, t) for lvl, t in self.levels if lvl < level]
        self.levels.append((level, title.strip()))

    def __str__(self) -> str:
        return " › ".join(t for _, t in self.levels if t)


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Sections of a Markdown file: a new one at every ATX or setext heading, fences respected."""
    trail = _Trail()
    lines: list[str] = []
    start = 0
    position = 0
    fence: str | None = None

    def flush() -> Section | None:
        text = "".join(lines)
        section = Section(text=text, offset=start, heading=str(trail) or None) if text.strip() else None
        lines.clear()
        return section

    for offset, block in decoded_blocks(path, result):
        position = offset
        for line in block.splitlines(keepends=True):
            bare = line.rstrip("\n")
            fence_match = _FENCE.match(bare)
            if fence is not None:
                if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                    fence = None
            elif fence_match:
                fence = fence_match.group(1)
            elif (atx := _ATX.match(bare)) is not None:
                if section := flush():
                    yield section
                start = position
                trail.enter(len(atx.group(1)), atx.group(2))
            elif _SETEXT.match(bare) and lines and lines[-1].strip() and not _ATX.match(lines[-1]):
                title = lines.pop()
                if section := flush():
                    yield section
                start = position - len(title)
                lines.append(title)
                trail.enter(1 if bare.strip()[0] == "=" else 2, title.strip())
            lines.append(line)
            position += len(line)
    if section := flush():
        yield section
