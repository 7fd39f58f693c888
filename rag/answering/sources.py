"""Sources for a prompt: retrieved passages merged, numbered and packed into a token budget.

Passages from the same document that touch or overlap are merged into one source, so the
model reads continuous text and a citation points at one span. Sources are numbered
[1]..[n] best first and packed until the budget is spent; each is counted in the model's
own tokens, wrapper included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.documents import Box, Passage, display_path, place, union

_GAP = 2  # characters between two passages that still count as touching


@dataclass(frozen=True, slots=True)
class Source:
    """A numbered piece of a document the model may cite."""

    number: int
    path: Path
    page: int | None
    heading: str | None
    start: int
    end: int
    text: str
    score: float
    chunk_ids: tuple[str, ...] = field(default=())
    box: Box | None = None  # where on the page, for text recognized from the page's image

    @property
    def label(self) -> str:
        """``report.pdf, page 3, section Costs`` for people (and for the model)."""
        return place(self.path, self.page, self.heading, self.box is not None)


def merge(passages: Sequence[Passage]) -> list[Source]:
    """Merge touching or overlapping passages of one document and page; best first, unnumbered (0)."""
    groups: dict[tuple[str, int | None], list[Passage]] = {}
    for passage in passages:
        groups.setdefault((str(passage.path), passage.page), []).append(passage)
    merged: list[Source] = []
    for group in groups.values():
        group.sort(key=lambda p: p.start)
        current: Source | None = None
        for p in group:
            if current is not None and p.start <= current.end + _GAP:
                if p.end > current.end:
                    joined = current.text + (" " if p.start > current.end else "") + p.text[max(0, current.end - p.start):]
                    current = replace(current, end=p.end, text=joined)
                current = replace(current, score=max(current.score, p.score), chunk_ids=current.chunk_ids + (p.chunk_id,),
                                  box=union(current.box, p.box))
                continue
            if current is not None:
                merged.append(current)
            current = Source(0, p.path, p.page, p.heading, p.start, p.end, p.text, p.score, (p.chunk_id,), p.box)
        if current is not None:
            merged.append(current)
    # The same text in two files (a copy, or a copy with a word changed: a draft and its final
    # version) is sent once, the better-matching one: the room it took goes to another source.
    kept: list[tuple[Source, frozenset[str]]] = []
    for source in sorted(merged, key=lambda s: -s.score):
        shingles = _shingles(source.text)
        if not any(_alike(shingles, other) for _, other in kept):
            kept.append((source, shingles))
    return [source for source, _ in kept]


NEAR_COPY = 0.8  # of their three-word runs two texts share, at least, to count as one text


def _shingles(text: str) -> frozenset[str]:
    words = text.lower().split()
    if len(words) < 3:
        return frozenset({" ".join(words)})
    return frozenset(" ".join(words[i:i + 3]) for i in range(len(words) - 2))


def _alike(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a & b) >= NEAR_COPY * max(1, len(a | b))


# Anything in a document that reads as our own <source>/<sources> tags, in any case or spacing.
_TAG = re.compile(r"<(?=\s*/?\s*sources?\b)", re.IGNORECASE)


def render(source: Source) -> str:
    """A source as the model sees it: delimited, labelled, its text quoted as data (it cannot close the tag)."""
    text = _TAG.sub("&lt;", source.text)
    return f'<source id="{source.number}" from="{_attr(source.label)}">\n{text.strip()}\n</source>'


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def pack(candidates: Sequence[Source], count_tokens: Callable[[str], int], budget: int, first: int = 1) -> list[Source]:
    """Number candidates ``first``, ``first + 1``... in order and keep those that fit in ``budget`` tokens."""
    packed: list[Source] = []
    used = 0
    for source in candidates:
        numbered = replace(source, number=first + len(packed))
        cost = count_tokens(render(numbered)) + 1
        if used + cost > budget:
            continue  # a smaller source further down may still fit
        packed.append(numbered)
        used += cost
    return packed


def whole_document_sources(documents: Sequence[tuple[Path, list[Passage]]]) -> list[Source]:
    """Documents in full, one source per page (or the whole text when there are no pages).

    ``documents`` gives each file with all its chunks (as passages, in order); overlapping
    chunks are stitched back into continuous text by their offsets.
    """
    sources: list[Source] = []
    for path, chunks in documents:
        by_page: dict[int | None, list[Passage]] = {}
        for chunk in chunks:
            by_page.setdefault(chunk.page, []).append(chunk)
        for page, items in by_page.items():
            items.sort(key=lambda c: c.start)
            text, end = "", None
            for c in items:
                if end is None or c.start >= end:
                    text += ("\n" if text else "") + c.text
                elif c.end > end:
                    text += c.text[end - c.start :]
                end = c.end if end is None else max(end, c.end)
            heading = items[0].heading if len({c.heading for c in items}) == 1 else None
            box = None
            for c in items:
                box = union(box, c.box)
            sources.append(Source(0, path, page, heading, items[0].start, end or 0, text, 1.0, tuple(c.chunk_id for c in items), box))
    return sources


def describe(source: Source) -> str:
    """Where a source comes from, with the full path (for the CLI's source list)."""
    where = f", page {source.page}" if source.page is not None else ""
    return f"{display_path(source.path)}{where}"
