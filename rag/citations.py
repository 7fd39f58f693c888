"""Citations: the [n] marks in an answer, mapped back to file, page, span and snippet."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.sources import Source

_MARK = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_SNIPPET = 280


@dataclass(frozen=True, slots=True)
class Citation:
    """One source the answer cites: where it is, and the passage it stands for."""

    number: int
    path: Path
    page: int | None
    heading: str | None
    start: int
    end: int
    snippet: str
    text: str


def _numbers(inside: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", inside):
        bounds = re.split(r"\s*[–-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            if 0 < hi - lo <= 20:
                out.extend(range(lo, hi + 1))
                continue
        out.extend(int(b) for b in bounds if b.isdigit())
    return out


def resolve(answer: str, sources: Sequence[Source]) -> tuple[str, list[Citation], int]:
    """Map the answer's marks to sources.

    Returns the answer with marks that point nowhere removed, the citations in order of
    first use, and how many marks were dropped.
    """
    by_number = {s.number: s for s in sources}
    cited: dict[int, Citation] = {}
    dropped = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal dropped
        valid = []
        for n in _numbers(match.group(1)):
            if n in by_number:
                valid.append(n)
                if n not in cited:
                    cited[n] = citation_for(by_number[n])
            else:
                dropped += 1
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned = _MARK.sub(keep, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned) if dropped else cleaned
    return cleaned, list(cited.values()), dropped


def citation_for(source: Source) -> Citation:
    """The citation of one source, with its snippet."""
    text = " ".join(source.text.split())
    snippet = text if len(text) <= _SNIPPET else text[:_SNIPPET].rsplit(" ", 1)[0] + " …"
    return Citation(source.number, source.path, source.page, source.heading, source.start, source.end, snippet, source.text)
