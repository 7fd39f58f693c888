"""Citations: the [n] marks in an answer, mapped back to file, page, span and snippet."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rag.answering.sources import Source
from rag.documents import text_to_path

_MARK = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_SNIPPET = 280


@dataclass(frozen=True, slots=True)
class Citation(Source):
    """A source the answer cites, with a short snippet of it to show beside the answer."""

    snippet: str = ""


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
    return Citation(**{f.name: getattr(source, f.name) for f in fields(Source)}, snippet=snippet)


def citation_from_dict(data: dict[str, Any]) -> Citation:
    """A citation saved in a conversation or the answer cache, read back (turns saved before 0.3 kept no score)."""
    data = {"score": 0.0, **data, "path": text_to_path(data["path"])}
    box = data.get("box")
    return Citation(**{**data, "chunk_ids": tuple(data.get("chunk_ids", ())), "box": tuple(box) if box else None})


def marks(text: str) -> list[int]:
    """The source numbers ``text`` cites, in order, each once."""
    return list(dict.fromkeys(n for m in _MARK.finditer(text) for n in _numbers(m.group(1))))


def strip_marks(text: str) -> str:
    """``text`` without its ``[n]`` marks."""
    return re.sub(r"\s+([.,;:!?。，；：！？])", r"\1", _MARK.sub("", text))


def link_marks(answer: str, link: Callable[[int], str]) -> str:
    """The answer with each ``[n]`` mark replaced by ``link(n)`` (the window makes them clickable)."""
    return _MARK.sub(lambda m: "".join(link(n) for n in _numbers(m.group(1))), answer)
